"""One trial of a sweep: `models.train` in this process with the trial's options, scored on two objectives.

The objectives are the best epoch's validation score (``val_score``; with ``--val-far``, the selection score
`models.train` keeps the best epoch by: the mean of the validation and far-check-set scores) and the network's
CPU milliseconds per frame (`models.latency.CpuTimer`: one thread, no GPU), measured before the
first epoch.

Pruning: Optuna's ``trial.report`` / ``should_prune`` do not support multi-objective studies, so after every
epoch but the last the trial compares itself with the complete trials of the study whose networks are at most as
slow: when at least ``MIN_PEERS`` of them reached this epoch and the median of their scores there is higher, the
trial is most likely dominated on both objectives and stops (state PRUNED; its best epoch so far is kept). The
per-epoch scores are trial attributes (``epoch_scores``), so workers on other machines see them.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import optuna

from models import store, train
from models.files import write_json
from models.latency import CpuTimer, cpu_model
from models.sweep.space import Space
from models.sweep.study import shown
from models.train_config import TrainConfig, TrainSource, with_options

MIN_PEERS = 2
MODEL_NAME = "model"


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of one worker shares: data, study, output folder, space and CPU split."""

    train: Path
    val: Path
    val_far: Path | None
    study: str
    storage: str
    out: Path
    space: Space
    threads: int


def should_prune(score: float, epoch: int, ms: float, peers: list[tuple[float, list[float]]]) -> bool:
    """Whether a trial scoring ``score`` after ``epoch`` (0-based) with a network of ``ms`` per frame is beaten by
    the median of the ``(ms, epoch scores)`` peers at most as slow that reached that epoch (at least MIN_PEERS)."""
    scores = [history[epoch] for peer_ms, history in peers if peer_ms <= ms and len(history) > epoch]
    return len(scores) >= MIN_PEERS and score < statistics.median(scores)


class TrialMonitor(keras.callbacks.Callback):
    """Times the network before training, records each epoch's selection score and stops a dominated trial."""

    def __init__(self, trial: optuna.Trial, timer: CpuTimer):
        super().__init__()
        self.trial, self.timer = trial, timer
        self.ms = math.nan  # measured when training begins
        self.pruned_after: int | None = None
        self.scores: list[float] = []

    def on_train_begin(self, logs=None):
        self.ms = self.timer.measure(self.model)
        self.trial.set_user_attr("cpu_ms_per_frame", self.ms)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.scores.append(float(logs.get("selection", logs["val_score"])))
        self.trial.set_user_attr("epoch_scores", self.scores)
        if epoch + 1 < self.params["epochs"] and should_prune(self.scores[-1], epoch, self.ms, self._peers()):
            self.pruned_after = epoch + 1
            self.model.stop_training = True

    def _peers(self) -> list[tuple[float, list[float]]]:
        complete = self.trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        return [(t.user_attrs["cpu_ms_per_frame"], t.user_attrs["epoch_scores"]) for t in complete]


def trial_dir(out: Path, study: str, number: int) -> Path:
    """Where trial ``number`` of ``study`` writes its model, card, history and log."""
    return Path(out) / study / f"trial-{number}"


def trial_config(setup: TrialSetup, options: dict, out: Path) -> TrainConfig:
    """The `models.train` config of a trial: the sweep's folders and threads, the trial's ``options``, ``out``."""
    base = TrainConfig(
        train=(TrainSource(setup.train),), val=(setup.val,), val_far=setup.val_far, out=out, workers=setup.threads,
        threads=True,
    )  # fmt: skip
    return with_options(base, options)


def run_trial(trial: optuna.Trial, setup: TrialSetup, timer: CpuTimer) -> tuple[float, float]:
    """Train with the trial's options; returns (selection score, CPU ms per frame) or raises TrialPruned."""
    options = setup.space.suggest(trial)
    folder = trial_dir(setup.out, setup.study, trial.number)
    shutil.rmtree(folder, ignore_errors=True)  # a leftover of a deleted study must not be resumed
    folder.mkdir(parents=True)
    model_path = folder / MODEL_NAME
    monitor = TrialMonitor(trial, timer)
    started = time.perf_counter()
    with (folder / "train.log").open("w") as log, contextlib.redirect_stdout(log):
        card = train.train(trial_config(setup, options, model_path), extra_callbacks=[monitor])
    card["sweep"] = {
        "study": setup.study,
        "trial": trial.number,
        "storage": shown(setup.storage),
        "params": options,
        "cpu_ms_per_frame": monitor.ms,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    write_json(store.card_path(model_path), card)
    trial.set_user_attr("model", str(model_path.resolve()))
    trial.set_user_attr("worker", card["sweep"]["worker"])
    trial.set_user_attr("cpu", cpu_model())
    trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
    trial.set_user_attr("parameters", card["parameters"])
    trial.set_user_attr("best_epoch", card["best_epoch"])
    if monitor.pruned_after:
        raise optuna.TrialPruned(f"after epoch {monitor.pruned_after}: beaten by trials with as fast a network")
    return card.get("selection", card["validation"]["final_score"]), monitor.ms
