"""Workers: processes that run a study's trials one after another until it has enough.

``--workers K`` starts K worker processes on this machine, each the same command with ``--workers 1`` and its
share of the machine:

- CPU: each worker computes with a K-th of this process's cores as threads (the remainder to the first workers;
  one each when K is larger): ``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS`` and ``OMP_NUM_THREADS``
  (TensorFlow's and PyTorch's pools), and `models.train` augments in as many threads. Workers are not pinned to
  cores, so the scheduler can move them off a core that another job keeps busy. (XLA's CPU pool, for
  ``KERAS_BACKEND=jax`` on a CPU machine, takes no such limit.)
- GPU: the K workers share it. JAX gets ``XLA_PYTHON_CLIENT_MEM_FRACTION = 0.9 / K`` (it would otherwise take
  75 % of the memory in the first process), TensorFlow ``TF_FORCE_GPU_ALLOW_GROWTH=true`` (memory as needed
  instead of all of it); PyTorch allocates as needed anyway. A variable you set yourself is left alone.

A worker stops when the study has ``--trials`` finished (complete or pruned) trials, at ``--timeout``, or after
``MAX_FAILURES`` failed trials in a row. While the trials still missing are running in other workers it waits,
so that a trial that fails or goes stale is run again by a worker still there. A worker whose trial another
worker marked failed meanwhile (its heartbeat came late) drops its result and goes on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna

from models.sweep import study as studies
from models.sweep.space import Space

MAX_FAILURES = 3
GPU_SHARE_ENV = ("XLA_PYTHON_CLIENT_MEM_FRACTION", "TF_FORCE_GPU_ALLOW_GROWTH")
THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class SweepConfig:
    """A sweep as given on the command line."""

    train: Path
    val: Path
    val_far: Path | None
    study: str
    trials: int
    storage: str
    space_file: Path
    out: Path
    timeout: float | None
    heartbeat: int
    threads: int | None = None

    def worker_argv(self, threads: int) -> list[str]:
        """The command line of one worker of this sweep, computing with ``threads`` threads."""
        argv = ["--train", str(self.train), "--val", str(self.val), "--study", self.study]
        argv += ["--trials", str(self.trials), "--storage", self.storage, "--space", str(self.space_file)]
        argv += ["--out", str(self.out), "--heartbeat", str(self.heartbeat), "--workers", "1"]
        argv += ["--threads", str(threads)]
        argv += ["--val-far", str(self.val_far)] if self.val_far else []
        argv += ["--timeout", str(self.timeout)] if self.timeout else []
        return argv


def available_cores() -> int:
    """How many CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_shares(cores: int, workers: int) -> list[int]:
    """Threads per worker: ``cores`` split evenly, the remainder to the first workers, at least one each."""
    size, extra = divmod(cores, workers)
    return [max(1, size + (i < extra)) for i in range(workers)]


def gpu_share_env(workers: int) -> dict[str, str]:
    """The environment that lets ``workers`` processes share one GPU (see the module docstring)."""
    return dict(zip(GPU_SHARE_ENV, (f"{0.9 / workers:.3f}", "true")))


def limit_threads(threads: int) -> None:
    """Compute with ``threads`` threads in this process and the ones it starts; before Keras is imported."""
    for name in THREAD_ENV:
        os.environ[name] = str(threads)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the running trial is marked failed, not left running."""


def _terminate(signum, frame):
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within: SIGTERM raises `Terminated`; the previous handler is restored after."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_workers(config: SweepConfig, workers: int) -> int:
    """Start ``workers`` worker processes with their shares of this machine and wait; returns the worst status."""
    env = {**gpu_share_env(workers), **os.environ}
    with sigterm_as_interrupt():
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "models.sweep", *config.worker_argv(config.threads or share)], env=env
            )
            for share in thread_shares(available_cores(), workers)
        ]
        try:
            return max(process.wait() for process in processes)
        except KeyboardInterrupt as interrupt:  # Ctrl-C reaches the workers too; SIGTERM is passed on
            if isinstance(interrupt, Terminated):
                for process in processes:
                    process.terminate()
            return max(process.wait() for process in processes)


def run_worker(config: SweepConfig, study: optuna.Study, space: Space) -> int:
    """Run trials of ``study`` until it has enough (see the module docstring); returns an exit status."""
    from models.latency import CpuTimer
    from models.sweep.trial import TrialSetup, run_trial

    threads = config.threads or available_cores()
    setup = TrialSetup(
        config.train, config.val, config.val_far, config.study, config.storage, config.out, space, threads
    )
    started, failures, asked, ended = time.monotonic(), 0, [], []
    worker = f"worker {os.getpid()} ({threads} threads)"

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        asked.append(trial.number)
        return run_trial(trial, setup, timer)

    with sigterm_as_interrupt(), CpuTimer() as timer:
        while failures < MAX_FAILURES:
            if config.timeout and time.monotonic() - started > config.timeout:
                print(f"{worker}: --timeout {config.timeout:g} s reached", flush=True)
                break
            studies.fail_stale(study)
            finished = studies.count(study, *studies.FINISHED)
            if finished >= config.trials:
                break
            queued = studies.count(study, optuna.trial.TrialState.WAITING)
            running = studies.count(study, optuna.trial.TrialState.RUNNING)
            if not queued and finished + running >= config.trials:
                time.sleep(config.heartbeat)  # the missing trials run elsewhere: see how they end
                continue
            asked.clear()
            try:
                study.optimize(
                    objective, n_trials=1, catch=(Exception,), callbacks=[lambda _, trial: ended.append(trial)]
                )
            except (ValueError, AssertionError):  # Optuna's refusal to finish a trial that no longer runs: a
                # ValueError, or after an objective that returned, Optuna 5.0's "Should not reach" assertion
                if not asked or not failed_meanwhile(study, asked[-1]):
                    raise
                print(
                    f"{worker}: trial {asked[-1]} was marked failed by another worker while it ran (its heartbeat "
                    "came late); its result is dropped",
                    flush=True,
                )
                continue
            print(f"{worker}: {describe(ended[-1])}", flush=True)
            failures = failures + 1 if ended[-1].state == optuna.trial.TrialState.FAIL else 0
    if failures >= MAX_FAILURES:
        print(f"{worker}: stopping after {failures} failed trials in a row (their errors are above)", file=sys.stderr)
        return 1
    return 0


def failed_meanwhile(study: optuna.Study, number: int) -> bool:
    """Whether trial ``number`` of ``study`` was marked failed (by another worker that found it stale)."""
    trial = next(trial for trial in study.get_trials(deepcopy=False) if trial.number == number)
    return trial.state == optuna.trial.TrialState.FAIL


def describe(trial: optuna.trial.FrozenTrial) -> str:
    """One line about a finished trial."""
    line = f"trial {trial.number} {trial.state.name.lower()}"
    if trial.values:
        line += f": score {trial.values[0]:.4f}, {trial.values[1]:.2f} ms/frame"
    elif "epoch_scores" in trial.user_attrs:
        line += f" after {len(trial.user_attrs['epoch_scores'])} epochs"
    seconds = trial.user_attrs.get("seconds")
    return line + (f" in {seconds:.0f} s" if seconds else "") + f" ({trial.params})"
