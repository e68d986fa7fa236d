"""Train the follow-me FCN.

    python -m models.train --train DIR[:WEIGHT] [--train DIR2[:WEIGHT] ...] --val DIR [--val DIR2 ...]
                           --arch fcn4 --out weights/NAME [options]
    python -m models.train --recipe models/recipes/NAME.toml [options that override the recipe's]

Backend-agnostic Keras 3: the same command trains with KERAS_BACKEND=tensorflow, jax or torch, on the GPU the
backend sees or on the CPU. Training draws from the union of every --train folder, each image of a folder
drawn WEIGHT times a pass (default 1). Each epoch is scored on every --val folder with the Udacity score
(`models.scoring`); the selection score is the mean of their final_scores (and of --val-far's), and the best
epoch is kept as ``NAME.keras`` with its card ``NAME.card.json``. Interrupted runs resume from ``NAME.ckpt/``.
--init warm-starts from existing weights: the whole model, or, with --arch, a new architecture that takes every
layer whose name and weight shapes match (say the encoder of a model with wider decoders). Also written:
``NAME.history.csv``, ``NAME.loss.png`` (the curves), TensorBoard logs in ``NAME.logs/`` when TensorFlow is
installed. The options are the fields of `models.train_config.TrainConfig`; a recipe is a TOML file of them.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from models import store
from models.architecture import build_fcn, resolve_arch
from models.augment import Augmenter, collect_targets
from models.dataset import Dataset, DatasetError, combine, load_dataset
from models.devices import describe_devices
from models.distill import Distiller
from models.evaluate import EvalSet, load_eval_sets, predict, score_sets, size_figures
from models.files import write_atomically
from models.imaging import TARGET_CLASS, scale_input
from models.losses import SegmentationLoss
from models.scoring import PRESENCE_PIXELS
from models.sizes import is_far, target_areas
from models.train_config import SCHEDULES, TrainConfig, default, load_recipe, with_options

CLASS_NAMES = ("background", "other people", "target")
LR_FLOOR = 0.05  # the cosine schedules end at this fraction of --lr
SELECTION_RULE = (
    "the mean of the final_scores of every validation folder (--val, in order, then --val-far); each final_score "
    "counts a missed target and a false positive alike in its weight TP / (TP + FP + FN)"
)


@dataclass
class Check:
    """A validation folder scored every epoch: its name in logs and cards, and its scenarios."""

    name: str
    sets: list[EvalSet]


class TrainingBatches(keras.utils.PyDataset):
    """Augmented batches drawn from a decoded dataset; deterministic for a seed, epoch and batch index.

    ``pool`` lists the image indices of one pass, an image repeated to be drawn more often (default: each once).
    """

    def __init__(
        self,
        data: Dataset,
        batch_size: int,
        steps: int,
        augmenter: Augmenter,
        seed: int,
        pool: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.data, self.batch_size, self.steps = data, batch_size, steps
        self.augmenter, self.seed, self.epoch = augmenter, seed, 0
        self.pool = np.arange(len(data)) if pool is None else pool

    def __len__(self) -> int:
        return self.steps

    def _indices(self, index: int) -> np.ndarray:
        n = len(self.pool)
        first = index * self.batch_size
        rounds = range(first // n, (first + self.batch_size - 1) // n + 1)
        order = np.concatenate([np.random.default_rng([self.seed, self.epoch, r]).permutation(n) for r in rounds])
        start = first - rounds[0] * n
        return self.pool[order[start : start + self.batch_size]]

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        images, targets = [], []
        for i in self._indices(index):
            image, classes = self.augmenter(self.data.images[i], self.data.classes[i], rng)
            images.append(image)
            targets.append(classes)
        return scale_input(np.stack(images)), np.stack(targets)  # class indices: the loss one-hot encodes them

    def on_epoch_end(self) -> None:
        self.epoch += 1


class Throughput(keras.callbacks.Callback):
    """Adds ``images_per_s`` to the epoch logs and prints it."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.batches = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        rate = self.batches * self.batch_size / (time.perf_counter() - self.started)
        if logs is not None:
            logs["images_per_s"] = rate
        print(f"epoch {epoch + 1}: {rate:.1f} training images/s")


class TimeLimit(keras.callbacks.Callback):
    """Stops training at the end of the first epoch that ends after ``seconds`` of training."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self.started > self.seconds:
            print(f"Time limit of {self.seconds:.0f} s reached after epoch {epoch + 1}: stopping")
            self.model.stop_training = True


class CosineOverTime(keras.callbacks.Callback):
    """Cosine learning-rate decay over ``seconds`` of training instead of over planned steps, set at each epoch's
    start: a run stopped by --time-limit ends at the low rate however fast the machine draws batches.
    The clock starts with training (a resumed run starts it again)."""

    def __init__(self, lr: float, seconds: float, alpha: float):
        super().__init__()
        self.lr, self.seconds, self.alpha = lr, seconds, alpha

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.current = self.rate(time.perf_counter() - self.started)
        self.model.optimizer.learning_rate = self.current

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.current

    def rate(self, elapsed: float) -> float:
        """The learning rate after ``elapsed`` seconds: CosineDecay's curve with time for steps."""
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / self.seconds)))
        return self.lr * ((1 - self.alpha) * cosine + self.alpha)


class KeepBest(keras.callbacks.Callback):
    """Scores every epoch on the validation folders and saves the model when the selection score improves.

    The selection score is the mean of the final_scores of ``checks`` (`SELECTION_RULE`): every --val, then the
    far-target check set (`models.farset`), so that each weighs as much as the first. The first --val is the
    card's ``validation``; every --val is in its ``validations`` with its far-target recall and false
    positives. Without validation data every epoch is saved. ``save_every`` also keeps ``NAME.epochNNN.keras``
    snapshots.
    """

    def __init__(
        self,
        out: Path,
        card: dict,
        checks: list[Check],
        best: float,
        save_every: int,
        far: Check | None = None,
        student: keras.Model | None = None,
    ):
        super().__init__()
        self.out, self.card, self.checks, self.best, self.save_every = out, card, checks, best, save_every
        self.far, self.student = far, student

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        model = self.student or self.model
        card = {**self.card, "epochs_trained": epoch + 1, "date": _now()}
        if self.checks:
            results, notes = {}, []
            for number, check in enumerate(self.checks, 1):
                result, details = score_sets(model, check.sets)
                result["sizes"] = size_figures(check.sets, details)
                results[check.name] = result
                notes.append(f"{check.name} {_summary(result)}")
                prefix = "val" if number == 1 else f"val{number}"
                logs.update({f"{prefix}_score": result["final_score"], f"{prefix}_far": _far_recall(result),
                             f"{prefix}_fp": result["sizes"]["no_target"]["false_pos"]})  # fmt: skip
            first = results[self.checks[0].name]
            logs.update(val_iou=first["final_iou"], val_weight=first["weight"])
            scores = [result["final_score"] for result in results.values()]
            if self.far:
                far_result, _ = score_sets(model, self.far.sets)
                scores.append(far_result["final_score"])
                logs.update(far_score=far_result["final_score"])
                notes.append(f"far check set {far_result['final_score']:.4f}")
                card.update(far_check=far_result)
            selection = sum(scores) / len(scores)
            if len(scores) > 1:
                logs.update(selection=selection)
            print(f"epoch {epoch + 1}: {'; '.join(notes)}; selection {selection:.4f}, best so far {self.best:.4f}")
            card.update(validation=first, validations=results, selection=selection)
            improved = selection > self.best
        else:
            improved = True
        if self.save_every and (epoch + 1) % self.save_every == 0:
            snapshot = self.out.with_name(f"{self.out.name}.epoch{epoch + 1:03d}")
            store.save(model, snapshot, {**card, "best_epoch": epoch + 1})
        if improved:
            self.best = card.get("selection", self.best)
            store.save(model, self.out, {**card, "best_epoch": epoch + 1})


class LossCurves(keras.callbacks.Callback):
    """Redraws ``NAME.loss.png`` from the history CSV after every epoch."""

    def __init__(self, history_csv: Path, figure: Path):
        super().__init__()
        self.history_csv, self.figure = history_csv, figure

    def on_epoch_end(self, epoch, logs=None):
        plot_history(self.history_csv, self.figure)


def plot_history(history_csv: Path, figure: Path) -> None:
    """Loss (left axis) and validation score (right axis) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with history_csv.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, [float(r["loss"]) for r in rows], label="training loss", color="tab:blue")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if rows[0].get("val_score"):
        right = ax.twinx()
        right.plot(epochs, [float(r["val_score"]) for r in rows], label="validation score", color="tab:red")
        right.set_ylabel("validation final_score")
        right.legend(loc="upper right")
    ax.legend(loc="upper left")
    ax.set_title(figure.name.replace(".loss.png", ""))
    fig.tight_layout()
    write_atomically(figure, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)


def _far_recall(result: dict) -> float:
    """Far-target recall of a result with size figures; 0 when the folder has no far target."""
    return result["sizes"]["far"]["recall"] or 0.0


def _summary(result: dict) -> str:
    """One validation folder's epoch figures, for the progress line."""
    far, none = result["sizes"]["far"], result["sizes"]["no_target"]
    return (
        f"final_score {result['final_score']:.4f} (IoU {result['final_iou']:.4f}, weight {result['weight']:.4f}), "
        f"far {far['found']}/{far['images']}, false positives {none['false_pos']}/{none['images']}"
    )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def describe_data(data: Dataset, weight: int = 1) -> dict:
    """Counts, draws a pass and content hash of a training dataset, for the card."""
    with_target = int(((data.classes == TARGET_CLASS).sum((1, 2)) > PRESENCE_PIXELS).sum())
    return {
        "path": str(data.root),
        "weight": weight,
        "images": len(data),
        "with_target": with_target,
        "far_targets": int(is_far(target_areas(data.classes)).sum()),
        "sha256": data.content_hash,
    }


def versions() -> dict:
    """Keras, backend and (when installed) TensorFlow versions."""
    found = {"keras": keras.__version__, "backend": keras.backend.backend()}
    try:
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    except ImportError:
        found["tensorflow"] = None
    return found


def build_or_load(config: TrainConfig) -> tuple[keras.Model, str]:
    """The model to train and its spec string: a new one for --arch, the --init weights, or both (a transfer)."""
    if not config.init:
        arch = config.arch or "fcn4"
        return build_fcn(arch, config.input_size), resolve_arch(arch)
    source, card = store.load(config.init)
    if not config.arch:
        if card.get("input_size", config.input_size) != config.input_size:
            raise ValueError(
                f"--init {config.init} has input size {card['input_size']}, not --input-size {config.input_size}; "
                "give --arch to transfer its weights to another input size"
            )
        return source, card.get("spec", card.get("arch", "unknown"))
    model = build_fcn(config.arch, config.input_size)
    copied = transfer_weights(source, model)
    print(f"Warm start from {config.init}: {len(copied)} of {len(model.layers)} layers copied ({', '.join(copied)})")
    return model, resolve_arch(config.arch)


def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy into ``target`` the weights of each layer of ``source`` with the same name and weight shapes;
    returns the names copied. Fully convolutional layers do not depend on the input size."""
    copied = []
    for layer in target.layers:
        try:
            weights = source.get_layer(layer.name).get_weights()
        except ValueError:
            continue
        if weights and [w.shape for w in weights] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(weights)
            copied.append(layer.name)
    return copied


def init_at_size(path: str | os.PathLike, size: int) -> keras.Model:
    """The saved model at ``path`` (--init, --teacher) at ``size`` x ``size`` input: as loaded, or rebuilt from its
    card's spec with its weights."""
    source, card = store.load(path)
    if card["input_size"] == size:
        return source
    if "spec" not in card:
        raise ValueError(f"{path} has no architecture spec in its card to rebuild it at {size}px")
    model = build_fcn(card["spec"], size)
    transfer_weights(source, model)
    return model


def with_teacher(model: keras.Model, config: TrainConfig) -> keras.Model:
    """The model to fit: ``model`` itself, or with --teacher a `Distiller` around it, built."""
    if not config.teacher or config.teacher_weight is None:
        return model
    teacher = init_at_size(config.teacher, config.input_size)
    distiller = Distiller(model, teacher, config.teacher_weight)
    distiller(np.zeros((1, config.input_size, config.input_size, 3), np.float32))  # built, for BackupAndRestore
    print(f"Distilling from {config.teacher} (weight {distiller.weight:g})")
    return distiller


def mine_hard_negatives(model: keras.Model, data: Dataset) -> np.ndarray:
    """Indices of the training images without the target in which ``model`` finds one (a false positive)."""
    negatives = np.flatnonzero((data.classes == TARGET_CLASS).sum(axis=(1, 2)) <= PRESENCE_PIXELS)
    if not len(negatives):
        return negatives
    found = [
        (predict(model, data.images[chunk])[..., TARGET_CLASS] > 0.5).sum(axis=(1, 2)) > PRESENCE_PIXELS
        for chunk in np.array_split(negatives, max(1, len(negatives) // 256))
    ]
    return negatives[np.concatenate(found)]


def sampling_pool(config: TrainConfig, data: Dataset, weights: np.ndarray) -> np.ndarray:
    """The image indices of one pass over the union of the --train folders: each image as many times as its
    folder's weight (``weights``, one per image), times ``--far-repeat`` for far targets and
    ``--hard-negative-repeat`` for the --init model's false positives."""
    groups = [np.repeat(np.arange(len(data)), weights)]
    if config.far_repeat > 1:
        far = np.flatnonzero(is_far(target_areas(data.classes)))
        print(f"Far targets (4-100 px at 256): {len(far)} training images, drawn {config.far_repeat}x")
        groups += [np.repeat(far, weights[far])] * (config.far_repeat - 1)
    if config.hard_negative_repeat > 1 and config.init:
        hard = mine_hard_negatives(init_at_size(config.init, config.input_size), data)
        print(f"Hard negatives: {config.init} finds a target in {len(hard)} training images without one, drawn "
              f"{config.hard_negative_repeat}x")  # fmt: skip
        groups += [np.repeat(hard, weights[hard])] * (config.hard_negative_repeat - 1)
    return np.concatenate(groups)


def parse_args(argv: list[str] | None) -> TrainConfig:
    """The config the command line describes: --recipe's with the options given overriding its fields, or the
    options alone (the defaults: `TrainConfig`'s)."""
    parser = argparse.ArgumentParser(
        prog="python -m models.train", description=__doc__.split("\n")[0], argument_default=argparse.SUPPRESS
    )
    parser.add_argument(
        "--recipe",
        type=Path,
        help="a TOML file of these options (models/recipes/, docs/training.md); the options given here override "
        "its fields, a list (--train, --val) as a whole",
    )
    parser.add_argument(
        "--train",
        action="append",
        help="training folder (images/, masks/), optionally DIR:WEIGHT to draw its images WEIGHT times a pass; "
        "give it several times to train on the union",
    )
    parser.add_argument(
        "--val",
        action="append",
        help="validation folder, several times for several: the mean of their scores selects the best epoch",
    )
    parser.add_argument(
        "--val-far", help="far-target check set (models.farset): selection weighs it as much as a --val"
    )
    parser.add_argument(
        "--arch",
        help="preset (fcn1..fcn5, deep4, deep5, slim5) or spec string such as e32,e64,c128,d64,d32 (default fcn4)",
    )
    parser.add_argument("--input-size", type=int, help=f"default {default('input_size')}")
    parser.add_argument("--epochs", type=int, help=f"default {default('epochs')}")
    parser.add_argument("--batch-size", type=int, help=f"default {default('batch_size')}")
    parser.add_argument("--lr", type=float, help=f"default {default('lr')}")
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="cosine decay over the planned epochs (the default), over --time-limit seconds (cosine-time), or none",
    )
    parser.add_argument("--steps-per-epoch", type=int, help="default: one pass over the training data")
    parser.add_argument("--augment", help="comma list of shift,zoom,flip,color,paste; all (the default); none")
    parser.add_argument("--far-repeat", type=int, help="draw images with a far target N times a pass")
    parser.add_argument(
        "--hard-negative-repeat", type=int, help="draw the --init model's false positives N times a pass"
    )
    parser.add_argument("--class-weights", help="cross-entropy weight per class, e.g. 1,1,3 (default 1,1,1)")
    parser.add_argument("--dice", type=float, help="weight of the target Dice term (default 0)")
    parser.add_argument(
        "--dice-per-image",
        action=argparse.BooleanOptionalAction,
        help="the Dice term per image with the target, not over the batch: far targets count as much as near ones",
    )
    parser.add_argument(
        "--dice-empty",
        action=argparse.BooleanOptionalAction,
        help="with --dice-per-image, images without the target are scored too: 1 - 1 / (1 + the target mass predicted)",
    )
    parser.add_argument(
        "--presence",
        type=float,
        help="weight of the per-image presence term: the score's found / false-positive decision (models.losses)",
    )
    parser.add_argument("--init", help="warm start from these weights")
    parser.add_argument(
        "--teacher", help="distil from this trained model too: its probabilities are a second target (models.distill)"
    )
    parser.add_argument(
        "--distill-weight", type=float, help="weight of the teacher's cross-entropy term (default 1 with --teacher)"
    )
    parser.add_argument("--seed", type=int, help=f"default {default('seed')}")
    parser.add_argument("--workers", type=int, help=f"augmentation workers (default {default('workers')})")
    parser.add_argument(
        "--threads", action=argparse.BooleanOptionalAction, help="augment in threads instead of processes"
    )
    parser.add_argument("--time-limit", type=float, help="stop after the epoch that passes this many seconds")
    parser.add_argument("--save-every", type=int, help="also keep a snapshot every N epochs")
    parser.add_argument("--out", help="weights/NAME: writes NAME.keras and its card")
    given = vars(parser.parse_args(argv))
    recipe = given.pop("recipe", None)
    if recipe is not None:
        return load_recipe(recipe, given)
    missing = [f"--{name}" for name in ("train", "out") if name not in given]
    if missing:
        parser.error(f"the following arguments are required without --recipe: {', '.join(missing)}")
    return with_options(None, given)


def train(config: TrainConfig, extra_callbacks: list[keras.callbacks.Callback] | None = None) -> dict:
    """Run training as ``config`` says; returns the final card. ``extra_callbacks`` run after ours, so their
    ``on_epoch_end`` sees the epoch's validation scores in the logs (`models.sweep` uses it)."""
    keras.utils.set_random_seed(config.seed)
    print(f"Training with Keras {keras.__version__} on {keras.backend.backend()}, {describe_devices()}")
    started = time.perf_counter()
    sources = [load_dataset(source.path, config.input_size) for source in config.train]
    data = combine(sources)
    weights = np.repeat([source.weight for source in config.train], [len(d) for d in sources])
    checks = [Check(str(folder), load_eval_sets(folder, config.input_size)) for folder in config.val]
    far = Check(str(config.val_far), load_eval_sets(config.val_far, config.input_size)) if config.val_far else None
    print(f"Decoded {len(data)} training images from {len(sources)} folder(s) in {time.perf_counter() - started:.1f} s")
    model, spec = build_or_load(config)
    trained = with_teacher(model, config)
    pool = sampling_pool(config, data, weights)
    steps = config.steps_per_epoch or math.ceil(len(pool) / config.batch_size)
    augmentations = config.augment
    augmenter = Augmenter(augmentations, collect_targets(data.images, data.classes) if "paste" in augmentations else [])
    batches = TrainingBatches(
        data,
        config.batch_size,
        steps,
        augmenter,
        config.seed,
        pool,
        workers=config.workers,
        use_multiprocessing=not config.threads and config.workers > 1,
    )
    lr = config.lr
    if config.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=config.epochs * steps, alpha=LR_FLOOR)
    trained.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=SegmentationLoss(
            config.class_weights, config.dice, config.dice_per_image, config.dice_empty, config.presence
        ),
    )

    out = store.base_path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint_dir = out.with_name(out.name + ".ckpt")
    resuming = checkpoint_dir.is_dir()
    previous = store.read_card(out) if resuming else {}
    best = previous.get("selection", previous.get("validation", {}).get("final_score", -1.0))
    card = {
        "arch": config.arch or spec,
        "spec": spec,
        "input_size": config.input_size,
        "classes": list(CLASS_NAMES),
        "input_scaling": "(x / 255 - 0.5) * 2, PIL bilinear resize",
        "parameters": model.count_params(),
        "training_data": {
            "train": [describe_data(d, source.weight) for d, source in zip(sources, config.train)],
            "pool": len(pool),
        },
        "validation_data": [str(folder) for folder in config.val],
        "far_check_data": str(config.val_far) if config.val_far else None,
        "selection_rule": SELECTION_RULE,
        "hyperparameters": config.hyperparameters(steps),
        "recipe": config.recipe.card() if config.recipe else None,
        "versions": versions(),
        "trained_on": f"{keras.backend.backend()}: {describe_devices()}",
    }
    history_csv = out.with_name(out.name + ".history.csv")
    schedule = []
    if config.schedule == "cosine-time" and config.time_limit:
        schedule.append(CosineOverTime(config.lr, config.time_limit, LR_FLOOR))
    callbacks = [
        keras.callbacks.BackupAndRestore(str(checkpoint_dir)),
        Throughput(config.batch_size),
        *schedule,
        KeepBest(out, card, checks, best, config.save_every, far, student=model),
        keras.callbacks.CSVLogger(str(history_csv), append=resuming),
        LossCurves(history_csv, out.with_name(out.name + ".loss.png")),
    ]
    if config.time_limit:
        callbacks.append(TimeLimit(config.time_limit))
    if card["versions"]["tensorflow"] and importlib.util.find_spec("tensorboard"):
        callbacks.append(keras.callbacks.TensorBoard(str(out.with_name(out.name + ".logs"))))
    callbacks += extra_callbacks or []
    print(
        f"{'Resuming' if resuming else 'Starting'} {spec} at {config.input_size}px: {model.count_params()} "
        f"parameters, {steps} steps of {config.batch_size} per epoch, augment {','.join(augmentations) or 'none'}"
    )
    trained.fit(batches, epochs=config.epochs, callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    final = store.read_card(out)
    print(
        f"Done in {time.perf_counter() - started:.0f} s: {store.keras_path(out)} (best epoch {final.get('best_epoch')})"
    )
    return final


def main(argv: list[str] | None = None) -> int:
    try:
        train(parse_args(argv))
    except (DatasetError, store.ModelLoadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
