"""The search space of a sweep: a small TOML file over the options of `models.train`.

Each key is a field of `models.train_config.TrainConfig` (``input_size`` or ``input-size``), as a recipe names
it, and its value says how a trial sets it:

- a single value (``epochs = 20``): every trial uses it;
- a list (``arch = ["slim5", "e32,e64,c128,d64,d32"]``): each trial picks one;
- a table with ``low`` and ``high`` (``lr = { low = 3e-4, high = 3e-3, log = true }``): a number in that range,
  integers when both bounds are integers; optional ``log`` (sample the logarithm) and ``step``.

The options a sweep sets itself (``train``, ``val``, ``val_far``, ``out``, ``workers``, ``threads``) are not
allowed. Every value is checked when the file is read, as `models.train_config.with_options` reads and checks a
config: the fixed values together, then each choice and each range's bounds with them, so a bad value (or one
that needs an option the space does not fix, such as ``hard_negative_repeat`` without ``init``) stops the sweep
before any trial runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.train_config import TrainConfig, TrainSource, option_types, parse_toml, with_options

DEFAULT_SPACE = Path(__file__).with_name("space.toml")
SET_BY_SWEEP = frozenset({"train", "val", "val_far", "out", "workers", "threads"})
RANGE_KEYS = frozenset({"low", "high", "log", "step"})
SCALARS = (str, int, float)
PLACEHOLDER = TrainConfig(train=(TrainSource(Path("-")),), out=Path("-"))  # what the sweep sets, for the checks


class SpaceError(ValueError):
    """A search space file that cannot be read or names an option or value that `models.train` rejects."""


@dataclass(frozen=True)
class Space:
    """Fixed options, categorical choices and numeric ranges, each keyed by `models.train` option name."""

    fixed: dict
    choices: dict
    ranges: dict

    def suggest(self, trial) -> dict:
        """The options of one trial: the fixed ones and a value for every choice and range, asked of ``trial``."""
        options = dict(self.fixed)
        for name, values in self.choices.items():
            options[name] = trial.suggest_categorical(name, values)
        for name, bounds in self.ranges.items():
            low, high = bounds["low"], bounds["high"]
            log, step = bounds.get("log", False), bounds.get("step")
            if isinstance(low, int) and isinstance(high, int):
                options[name] = trial.suggest_int(name, low, high, step=step or 1, log=log)
            else:
                options[name] = trial.suggest_float(name, low, high, step=step, log=log)
        return options

    def as_dict(self) -> dict:
        """The space as plain data (recorded in the study, compared when a sweep joins it)."""
        return {"fixed": self.fixed, "choices": self.choices, "ranges": self.ranges}


def sweepable_options() -> tuple[str, ...]:
    """The `models.train` options a space may set."""
    return tuple(name for name in option_types() if name not in SET_BY_SWEEP)


def load_space(path: str | Path = DEFAULT_SPACE) -> Space:
    """Read and check a space file; raises SpaceError naming the file, the key and what is wrong."""
    path = Path(path)
    try:
        raw = parse_toml(path.read_text())
    except (OSError, ValueError) as error:
        raise SpaceError(f"Cannot read search space {str(path)!r}: {error}") from error
    allowed = sweepable_options()
    fixed, choices, ranges = {}, {}, {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in allowed:
            raise SpaceError(
                f"{path}: unknown key {key!r}; a space sets these models.train options: {', '.join(allowed)}"
            )
        if isinstance(value, dict):
            ranges[name] = _check_range(path, key, value)
        elif isinstance(value, list):
            if not value or not all(isinstance(v, SCALARS) for v in value):
                raise SpaceError(f"{path}: {key} must list one or more strings or numbers. Received: {value!r}")
            choices[name] = value
        elif isinstance(value, SCALARS):
            fixed[name] = value
        else:
            raise SpaceError(f"{path}: {key} must be a value, a list or a {{low, high}} table. Received: {value!r}")
    base = _checked(path, PLACEHOLDER, fixed)
    for name, value in [*choices.items(), *ranges.items()]:
        for candidate in _candidates(value):
            _checked(path, base, {name: candidate})
    return Space(fixed, choices, ranges)


def _check_range(path: Path, key: str, bounds: dict) -> dict:
    unknown = sorted(set(bounds) - RANGE_KEYS)
    numbers = all(isinstance(bounds.get(k), (int, float)) for k in ("low", "high"))
    if unknown or not numbers or not bounds["low"] < bounds["high"]:
        raise SpaceError(
            f"{path}: {key} as a range needs numbers low < high, with optional log and step. Received: {bounds!r}"
        )
    return bounds


def _candidates(value) -> list:
    if isinstance(value, dict):
        return [value["low"], value["high"]]
    return value if isinstance(value, list) else [value]


def _checked(path: Path, base: TrainConfig, options: dict) -> TrainConfig:
    """``base`` with ``options``, as a trial builds its config; raise SpaceError with the complaint."""
    try:
        return with_options(base, options)
    except ValueError as error:
        raise SpaceError(f"{path}: {error}") from None
