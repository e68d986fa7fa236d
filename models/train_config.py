"""The options of one `models.train` run: a frozen, typed `TrainConfig`, and the recipes (TOML files) that hold one.

A config is built from plain values, such as a recipe's keys, a sweep's trial options or the command line's
strings, by `with_options`: each value is read into its field's type (``"DIR:2"`` into a `TrainSource`,
``"1,1,2"`` into three floats, ``"all"`` into the augmentation names) and the whole is checked. A value
`models.train` would reject raises ValueError naming the option and what was received.

A recipe is a TOML file whose keys are `TrainConfig`'s fields (``input_size`` or ``input-size``), with the
command line's meaning and defaults; `load_recipe` reads it, overrides single fields and notes on the config
the file, its SHA-256 and the fields overridden, which the card records. The shipped model's recipes are in
``models/recipes/`` (docs/training.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from models.architecture import parse_spec
from models.augment import parse_augmentations

Schedule = Literal["cosine", "cosine-time", "constant"]
SCHEDULES: tuple[str, ...] = typing.get_args(Schedule)


@dataclass(frozen=True)
class TrainSource:
    """A training folder and how many times a pass each of its images is drawn."""

    path: Path
    weight: int = 1

    def __post_init__(self):
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 1:
            raise ValueError(f"the weight of {str(self.path)!r} must be 1 or more, a whole number. "
                             f"Received: {self.weight!r}")  # fmt: skip


def parse_source(text: str) -> TrainSource:
    """``DIR`` or ``DIR:WEIGHT`` (a whole number of draws a pass, 1 or more), as --train takes it."""
    folder, _, weight = text.rpartition(":")
    if not folder or not weight.isdigit():
        return TrainSource(Path(text))
    return TrainSource(Path(folder), int(weight))


@dataclass(frozen=True)
class Recipe:
    """The recipe file a config was read from, its SHA-256, and the fields given over it."""

    path: Path
    sha256: str
    overrides: tuple[str, ...] = ()

    def card(self) -> dict:
        """The recipe as the card records it."""
        return {"path": str(self.path), "sha256": self.sha256, "overrides": list(self.overrides)}


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a `models.train` run; the command line's ``--input-size`` is ``input_size`` here."""

    train: tuple[TrainSource, ...]
    out: Path
    val: tuple[Path, ...] = ()
    val_far: Path | None = None
    arch: str | None = None
    input_size: int = 160
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    schedule: Schedule = "cosine"
    steps_per_epoch: int | None = None
    augment: tuple[str, ...] = parse_augmentations("all")
    far_repeat: int = 1
    hard_negative_repeat: int = 1
    class_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    dice: float = 0.0
    dice_per_image: bool = False
    dice_empty: bool = False
    presence: float = 0.0
    init: Path | None = None
    teacher: Path | None = None
    distill_weight: float | None = None
    seed: int = 0
    workers: int = 2
    threads: bool = False
    time_limit: float | None = None
    save_every: int = 0
    recipe: Recipe | None = None

    def __post_init__(self):
        if not self.train:
            raise ValueError("a config needs one or more training folders (--train). Received: none")
        if self.dice_empty and not self.dice_per_image:
            raise ValueError("--dice-empty needs --dice-per-image: the batch's Dice already counts every image")
        if self.presence < 0:
            raise ValueError(f"--presence must be 0 or more. Received: {self.presence}")
        if self.val_far and not self.val:
            raise ValueError("--val-far needs --val: the selection score is the mean of the two")
        if self.distill_weight is not None and not self.teacher:
            raise ValueError("--distill-weight needs --teacher: it weighs the teacher's term")
        if self.schedule == "cosine-time" and not self.time_limit:
            raise ValueError("--schedule cosine-time needs --time-limit: the decay runs over that many seconds")
        if self.hard_negative_repeat > 1 and not self.init:
            raise ValueError("--hard-negative-repeat mines with the --init model; give --init")

    @property
    def teacher_weight(self) -> float | None:
        """The weight of the teacher's term: --distill-weight, 1 by default; None without --teacher."""
        if not self.teacher:
            return None
        return 1.0 if self.distill_weight is None else self.distill_weight

    def hyperparameters(self, steps: int) -> dict:
        """The card's ``hyperparameters``, with ``steps`` the steps per epoch training runs."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "schedule": self.schedule,
            "time_limit": self.time_limit,
            "steps_per_epoch": steps,
            "augment": list(self.augment),
            "far_repeat": self.far_repeat,
            "hard_negative_repeat": self.hard_negative_repeat,
            "class_weights": list(self.class_weights),
            "dice": self.dice,
            "dice_per_image": self.dice_per_image,
            "dice_empty": self.dice_empty,
            "presence": self.presence,
            "init": _text(self.init),
            "teacher": _text(self.teacher),
            "distill_weight": self.teacher_weight,
            "seed": self.seed,
        }


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def option_types() -> dict[str, Any]:
    """The options a recipe, a sweep space or the command line may set, by name, with their types."""
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig) if f.name != "recipe"}


def default(name: str) -> Any:
    """The default of option ``name``; dataclasses.MISSING for the required train and out."""
    return TrainConfig.__dataclass_fields__[name].default


def with_options(base: TrainConfig | None, values: Mapping[str, object]) -> TrainConfig:
    """``base`` with ``values`` (plain values keyed by option name, ``-`` or ``_``) read into their types and
    checked; a new config when ``base`` is None, which then needs ``train`` and ``out``."""
    known = option_types()
    fields: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ValueError(f"unknown option {key!r}; the options are {', '.join(known)}")
        fields[name] = _read(name, known[name], value)
    if base is not None:
        return dataclasses.replace(base, **fields)
    missing = [name for name in ("train", "out") if name not in fields]
    if missing:
        raise ValueError(f"a config needs {' and '.join(missing)}. Received: {', '.join(fields) or 'nothing'}")
    return TrainConfig(**fields)


def _read(name: str, hint: Any, value: object) -> Any:
    """``value`` as type ``hint``: a TOML or command-line value for field ``name``."""
    if type(None) in typing.get_args(hint):
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    reader = _FIELD_READERS.get(name) or _READERS.get(hint)
    if reader is None and typing.get_origin(hint) is Literal:
        reader = _choice(typing.get_args(hint))
    try:
        return typing.cast(typing.Callable[[object], Any], reader)(value)
    except (TypeError, KeyError):
        description = _DESCRIPTIONS.get(name) or _DESCRIPTIONS.get(hint, str(hint))
        raise ValueError(f"{name} must be {description}. Received: {value!r}") from None
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError
    return float(value)


def _of(kind: type) -> typing.Callable[[object], Any]:
    def read(value: object) -> Any:
        if not isinstance(value, kind):
            raise TypeError
        return value

    return read


def _path(value: object) -> Path:
    if not isinstance(value, (str, Path)) or not str(value):
        raise TypeError
    return Path(value)


def _items(value: object) -> list:
    """A list's items, or a single value as one."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _source(value: object) -> TrainSource:
    if isinstance(value, TrainSource):
        return value
    if isinstance(value, Mapping):
        return TrainSource(_path(value["path"]), _whole(value.get("weight", 1)))
    if isinstance(value, str):
        return parse_source(value)
    raise TypeError


def _class_weights(value: object) -> tuple[float, float, float]:
    numbers = [float(w) for w in value.split(",")] if isinstance(value, str) else [_number(w) for w in _items(value)]
    if len(numbers) != 3:
        raise ValueError(f"3 numbers needed, one per class. Received: {value!r}")
    return numbers[0], numbers[1], numbers[2]


def _augmentations(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return parse_augmentations(value)
    return parse_augmentations([_of(str)(name) for name in _items(value)])


def _arch(value: object) -> str:
    parse_spec(_of(str)(value))
    return typing.cast(str, value)


def _choice(choices: tuple[str, ...]) -> typing.Callable[[object], str]:
    def read(value: object) -> str:
        if value not in choices:
            raise ValueError(f"invalid choice: {value!r} (choose from {', '.join(map(repr, choices))})")
        return typing.cast(str, value)

    return read


_READERS: dict[Any, typing.Callable[[object], Any]] = {
    int: _whole,
    float: _number,
    bool: _of(bool),
    Path: _path,
    tuple[Path, ...]: lambda value: tuple(_path(item) for item in _items(value)),
    tuple[TrainSource, ...]: lambda value: tuple(_source(item) for item in _items(value)),
    tuple[float, float, float]: _class_weights,
    tuple[str, ...]: _augmentations,
}
_FIELD_READERS = {"arch": _arch}
_DESCRIPTIONS: dict[Any, str] = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    "arch": "a preset name or a spec string",
    Path: "a path",
    tuple[Path, ...]: "a path or a list of paths",
    tuple[TrainSource, ...]: 'a folder "DIR" or "DIR:WEIGHT", a { path, weight } table, or a list of them',
    tuple[float, float, float]: 'three numbers, as a list or "1,1,2"',
    tuple[str, ...]: 'augmentation names, as a list or "shift,flip"',
}


def parse_toml(text: str) -> dict[str, Any]:
    """The table of a TOML document (recipes, sweep spaces); raises ValueError where it is not valid TOML."""
    return tomllib.loads(text)


def load_recipe(path: str | Path, overrides: Mapping[str, object] | None = None) -> TrainConfig:
    """The config of the recipe at ``path`` with ``overrides`` (option name: value) given over its fields;
    raises ValueError naming the file and what is wrong."""
    path = Path(path)
    overrides = dict(overrides or {})
    try:
        content = path.read_bytes()
        config = with_options(None, {**parse_toml(content.decode()), **overrides})
    except (OSError, ValueError) as error:
        raise ValueError(f"Recipe {str(path)!r}: {error}") from None
    names = tuple(name.replace("-", "_") for name in overrides)
    return dataclasses.replace(config, recipe=Recipe(path, hashlib.sha256(content).hexdigest(), names))
