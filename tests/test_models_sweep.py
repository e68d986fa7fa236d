"""Sweeps over models.train: worker processes sharing a study on SQLite and PostgreSQL, a killed worker, the
report, the export into the server, and the search space file's errors."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, make_dataset

optuna = pytest.importorskip("optuna", reason="the sweep extra is not installed: pip install -e '.[sweep]'")

from models.sweep import study as studies  # noqa: E402
from models.sweep.cli import main  # noqa: E402
from models.sweep.space import SpaceError, load_space  # noqa: E402
from models.sweep.trial import TrialSetup, should_prune, trial_config  # noqa: E402
from models.sweep.workers import SweepConfig, run_worker, thread_shares  # noqa: E402

TINY_SPACE = """
arch = ["e8,c8,d8", "e8,e8,c8,d8,d8"]
input_size = 32
epochs = 2
batch_size = 4
lr = { low = 0.005, high = 0.05, log = true }
augment = ["none", "flip"]
"""


@pytest.fixture
def sweep_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLLOWME_CACHE", str(tmp_path / "cache"))
    make_dataset(tmp_path / "train", 12, seed=1)
    make_dataset(tmp_path / "val", 4, seed=2)
    (tmp_path / "space.toml").write_text(TINY_SPACE)
    return tmp_path


def sweep_argv(root: Path, study: str, trials: int, *extra: str) -> list[str]:
    return [
        "--train", str(root / "train"), "--val", str(root / "val"), "--space", str(root / "space.toml"),
        "--out", str(root / "sweeps"), "--study", study, "--trials", str(trials), "--heartbeat", "1", *extra,
    ]  # fmt: skip


def start_worker(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "models.sweep", *argv], cwd=ROOT)


def trials_of(url: str, study: str) -> list:
    return optuna.load_study(study_name=study, storage=url).get_trials()


def finished(trials) -> list:
    return [t for t in trials if t.state in studies.FINISHED]


def test_a_killed_worker_leaves_the_study_consistent_and_two_workers_complete_it(sweep_dirs, capsys):
    from follower.segmenter import Segmenter

    worker = start_worker(sweep_argv(sweep_dirs, "tiny", 3))
    history = sweep_dirs / "sweeps" / "tiny" / "trial-0" / "model.history.csv"
    deadline = time.monotonic() + 90
    while not history.is_file() and time.monotonic() < deadline:  # mid-trial: its first epoch is written
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    url = studies.default_storage(sweep_dirs / "sweeps")
    assert [t.state.name for t in trials_of(url, "tiny")] == ["RUNNING"]  # a reader still sees a sane study

    assert main(sweep_argv(sweep_dirs, "tiny", 3, "--workers", "2")) == 0
    trials = trials_of(url, "tiny")
    assert trials[0].state.name == "FAIL" and len(finished(trials)) >= 3
    # the killed trial was queued again by whichever worker found it stale, and run once with its options
    again = [t for t in trials[1:] if t.params == trials[0].params]
    assert [t.state in studies.FINISHED for t in again] == [True]
    assert len({t.user_attrs["worker"] for t in finished(trials)}) == 2  # by both workers

    first = next(t for t in trials if t.state.name == "COMPLETE")
    card_file = sweep_dirs / "sweeps" / "tiny" / f"trial-{first.number}" / "model.card.json"
    card = json.loads(card_file.read_text())
    assert card["sweep"]["study"] == "tiny" and card["sweep"]["trial"] == first.number
    assert card["sweep"]["storage"] == url and set(first.params) <= set(card["sweep"]["params"])
    assert (card_file.parent / "model.history.csv").is_file()
    assert first.values[0] == card["validation"]["final_score"] and first.values[1] > 0

    assert main(["--report", "tiny", "--out", str(sweep_dirs / "sweeps")]) == 0
    out = capsys.readouterr().out
    assert "Pareto front" in out and "finished trials per minute" in out
    assert (sweep_dirs / "sweeps" / "tiny" / "pareto.png").stat().st_size > 0

    exported = sweep_dirs / "weights" / "swept"
    where = ["--study", "tiny", "--out", str(sweep_dirs / "sweeps")]
    assert main(["--export", str(first.number), str(exported), *where]) == 0
    segment = Segmenter.load(exported)
    assert segment.input_size == 32
    assert segment(np.zeros((256, 256, 3), np.uint8)).shape[:2] == (32, 32)


def postgres_binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    if not found[-1]:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    return Path(found[-1]).parent


@pytest.fixture
def postgres_url():
    """A PostgreSQL server of its own on a free port, as the postgres user when this is root."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[sweep]'")
    binaries = postgres_binaries()
    as_user = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser to start PostgreSQL as the postgres user")
        as_user = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="followme-pg-"))
    if as_user:
        shutil.chown(folder, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=60)  # noqa: E731
    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(folder / "log"), "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


POP_WAITING = """
import json, sys, time
from pathlib import Path
import optuna
from models.sweep import study as studies
study = optuna.load_study(study_name="queue", storage=studies.open_storage(sys.argv[1]))
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
taken = []
while (trial := study._pop_waiting_trial_id()) is not None:
    taken.append(trial)
print(json.dumps(taken))
"""


def test_workers_sharing_sqlite_never_take_the_same_waiting_trial(tmp_path):
    url = studies.default_storage(tmp_path)
    study = optuna.create_study(storage=studies.open_storage(url), study_name="queue")
    for x in range(40):  # what failed trials queued again look like to the workers
        study.enqueue_trial({"x": x}, skip_if_exists=False)
    go = tmp_path / "go"
    workers = [
        subprocess.Popen([sys.executable, "-c", POP_WAITING, url, str(go)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    time.sleep(3)  # all of them waiting at the start line
    go.touch()
    taken = [trial for worker in workers for trial in json.loads(worker.communicate(timeout=120)[0])]
    assert sorted(taken) == [t._trial_id for t in study.get_trials()]  # each once


@pytest.mark.parametrize("objective_raises", [False, True])
def test_a_worker_whose_trial_was_failed_meanwhile_drops_its_result_and_goes_on(
    tmp_path, monkeypatch, capsys, objective_raises
):
    """Another worker marks a trial failed when its heartbeat comes late; Optuna then refuses its result."""
    import models.sweep.trial

    storage = studies.open_storage(studies.default_storage(tmp_path))
    study = optuna.create_study(storage=storage, study_name="late", directions=list(studies.DIRECTIONS))

    def run_trial(trial, setup, timer):
        if trial.number == 0:
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)  # found stale elsewhere
            if objective_raises:
                raise RuntimeError("the trial's own error")
        return 0.5, 1.0

    monkeypatch.setattr(models.sweep.trial, "run_trial", run_trial)
    config = SweepConfig(tmp_path, tmp_path, None, "late", 2, storage.url, tmp_path / "space.toml", tmp_path, None, 1)
    assert run_worker(config, study, space=None) == 0
    assert [t.state.name for t in study.get_trials()] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert "trial 0 was marked failed by another worker while it ran" in capsys.readouterr().out


def test_two_separately_started_workers_share_one_study_in_postgresql(sweep_dirs, postgres_url):
    argv = sweep_argv(sweep_dirs, "shared", 3, "--storage", postgres_url)
    workers = [start_worker(argv), start_worker(argv)]
    assert [w.wait(timeout=180) for w in workers] == [0, 0]
    trials = trials_of(postgres_url, "shared")
    assert len(finished(trials)) >= 3
    pids = {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in finished(trials)}
    assert pids == {w.pid for w in workers}


def test_a_schema_created_meanwhile_by_another_worker_is_retried_and_nothing_else_is():
    """Workers started together on a new PostgreSQL database race to create its tables (the test above)."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    class DriverError(Exception):
        def __init__(self, sqlstate):
            self.sqlstate = sqlstate

    assert studies.created_meanwhile(ProgrammingError("CREATE TABLE studies", {}, DriverError("42P07")))
    assert studies.created_meanwhile(IntegrityError("CREATE TYPE", {}, DriverError("23505")))
    assert not studies.created_meanwhile(OperationalError("connect", {}, DriverError("08001")))
    assert not studies.created_meanwhile(ValueError("not a database error"))


def test_bad_input_is_named(sweep_dirs, capsys):
    space = sweep_dirs / "space.toml"
    for text, complaint in (
        ("learning_rate = 0.1", "unknown key 'learning_rate'"),
        ("arch = ['e8,x8']", "Bad block 'x8'"),
        ("schedule = 'linear'", "invalid choice: 'linear'"),
        ("lr = { low = 0.1, high = 0.01 }", "low < high"),
        ("out = 'x'", "unknown key 'out'"),
        ("hard_negative_repeat = { low = 1, high = 3 }", "give --init"),  # a trial's config would be refused
        ("class_weights = ['1,1,2', '1,2']", "class_weights: 3 numbers needed"),
    ):
        space.write_text(text)
        with pytest.raises(SpaceError, match=complaint):
            load_space(space)
    space.write_text(TINY_SPACE)
    assert main(sweep_argv(sweep_dirs, "s", 1, "--storage", "nonsense")) == 2
    assert "is not a database URL" in capsys.readouterr().err
    assert main(["--report", "missing", "--out", str(sweep_dirs / "nowhere")]) == 2
    assert "No sweep storage at" in capsys.readouterr().err


def test_load_space_reads_the_default_space():
    space = load_space()
    assert "slim5" in space.choices["arch"] and space.ranges["lr"]["log"]


def test_a_trials_config_is_the_sweeps_folders_with_the_trials_options(tmp_path):
    """Each value is checked with the fixed ones: cosine-time needs the time limit the space fixes."""
    (tmp_path / "space.toml").write_text("schedule = 'cosine-time'\ntime_limit = 60\nclass_weights = ['1,1,2']\n")
    space = load_space(tmp_path / "space.toml")
    options = space.suggest(optuna.create_study().ask())
    setup = TrialSetup(tmp_path / "train", tmp_path / "val", None, "s", "sqlite://", tmp_path, space, threads=3)
    config = trial_config(setup, options, tmp_path / "s" / "trial-0" / "model")
    assert (config.schedule, config.time_limit, config.class_weights) == ("cosine-time", 60.0, (1.0, 1.0, 2.0))
    assert (config.train[0].path, config.val, config.workers, config.threads) == (setup.train, (setup.val,), 3, True)


def test_pruning_compares_with_trials_at_most_as_slow_at_the_same_epoch():
    peers = [(5.0, [0.4, 0.5]), (6.0, [0.3, 0.6]), (20.0, [0.9, 0.9])]
    assert should_prune(0.2, 0, ms=6.0, peers=peers)  # median 0.35 of the two as fast
    assert not should_prune(0.2, 0, ms=5.5, peers=peers)  # only one peer as fast
    assert not should_prune(0.4, 0, ms=30.0, peers=peers)  # median of three is 0.4
    assert not should_prune(0.1, 2, ms=30.0, peers=peers)  # nobody reached epoch 3


def test_cores_are_split_into_threads_per_worker():
    assert thread_shares(5, 2) == [3, 2]
    assert thread_shares(2, 3) == [1, 1, 1]
