"""The follower's settings: one frozen `FollowerConfig`, overridden by ``FOLLOWER_*`` variables and flags.

Each field ``name`` is one setting, declared once with `setting` (its default, help text, check, ...): it is set
by the environment variable ``FOLLOWER_NAME`` and by the flag ``--name`` (dashes for underscores), and named
``NAME`` in errors and in the layers given to `resolve`. Flags win over the environment, the environment over the
defaults. Values are converted to the field's type (float for the intrinsics, whose default ``None`` means "from
the depth image's width": fx = fy = W, cx = cy = W / 2; a switch such as ``--pred-viz`` is a flag without a value,
and ``true``/``false``, ``1``/``0``, ``yes``/``no`` or ``on``/``off`` in its variable) and checked once, here.
Errors name what the user typed: ``FOLLOWER_PORT`` for the environment, ``PORT`` for a flag's value.

Adding a setting is adding a field: its type, and `setting` with its default, help text and check; its flag, its
variable, its line in ``--help`` and its check follow. A check that spans settings goes in
`FollowerConfig.cross_checks`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import InitVar, dataclass
from typing import Any, TypeVar

from sim_bridge.protocol import MAX_IMAGE_SIDE

if typing.TYPE_CHECKING:
    from _typeshed import DataclassInstance

ENV_PREFIX = "FOLLOWER_"
MAX_PING_INTERVAL_S = 2.0
BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TRACKERS = ("kalman", "none")
RUNTIMES = ("keras", "openvino")  # what can run the network; RUNTIME also takes "auto"

Part = TypeVar("Part", bound="DataclassInstance")


class ConfigError(ValueError):
    """A setting with a value of the wrong type or out of range."""


class Environment(dict):
    """Settings read from ``FOLLOWER_*`` variables, raw strings: errors name the variable (``FOLLOWER_PORT``)."""


@dataclass(frozen=True)
class Check:
    """A condition on a setting's value, and what an error says the value must be."""

    holds: Callable[[Any], bool]
    expected: str


POSITIVE = Check(lambda value: value > 0, "positive")
POSITIVE_FINITE = Check(lambda value: 0 < value < math.inf, "positive")
NON_NEGATIVE = Check(lambda value: value >= 0, "non-negative")
FINITE = Check(math.isfinite, "finite")


def at_least(low: int) -> Check:
    """``value >= low``."""
    return Check(lambda value: value >= low, f"at least {low}")


def one_of(*choices: str) -> Check:
    """``value`` is one of ``choices``."""
    return Check(lambda value: value in choices, f"one of {', '.join(choices)}")


def setting(
    default: Any,
    help: str,
    check: Check | None = None,
    derived: str | None = None,
    fold: Callable[[str], str] | None = None,
) -> Any:
    """A `FollowerConfig` field: its default, its ``--help`` text, the `Check` its values must pass (skipped for
    None), what a default of None stands for (``derived``, shown in ``--help``) and the case folding of a string
    compared case-insensitively (``fold``, such as `str.lower`)."""
    metadata = {"help": help, "check": check, "derived": derived, "fold": fold}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class FollowerConfig:
    """Every setting of the follower (see the module docstring); invalid values raise `ConfigError`.

    ``names`` says how each setting was spelled where it was given (``{"PORT": "FOLLOWER_PORT"}``), for errors.
    """

    host: str = setting(
        "127.0.0.1", "address to bind; the channel steers a drone and has no authentication, so keep it local"
    )
    port: int = setting(
        4567,
        "port to listen on (the simulator connects to 4567)",
        Check(lambda port: 0 < port < 65536, "between 1 and 65535"),
    )
    ping_interval: float = setting(
        2.0,
        f"seconds between server PINGs, at most {MAX_PING_INTERVAL_S:g} (the simulator's watchdog drops Follow "
        "after 3 s without one)",
        Check(lambda seconds: 0 < seconds <= MAX_PING_INTERVAL_S, f"in (0, {MAX_PING_INTERVAL_S}]"),
    )
    ping_timeout: float = setting(10.0, "seconds to wait for a PONG before dropping a client", POSITIVE)
    max_connections: int = setting(
        8,
        "simulators served at once, each with its own follower; more are refused with a log line (the live view's "
        "page does not count)",
        at_least(1),
    )
    threshold: float = setting(
        0.5,
        "target probability above which a pixel belongs to the target mask",
        Check(lambda probability: 0 <= probability < 1, "in [0, 1)"),
    )
    min_pixels: int = setting(
        5,
        "the target is present when its mask covers more than this many pixels of the camera frame (native "
        "pixels, whatever the model's output size)",
        NON_NEGATIVE,
    )
    lost_after: int = setting(
        6, "the target is lost after more than this many frames in a row without a detection of it", NON_NEGATIVE
    )
    tracker: str = setting(
        "kalman",
        "kalman: confirm, filter and coast (docs in follower/tracking.py); none: every detection is sent, frame by "
        "frame, as the original follower did",
        one_of(*TRACKERS),
        fold=str.lower,
    )
    confirm_hits: int = setting(
        2,
        "kalman: detections a candidate needs within its last CONFIRM_FRAMES frames to be confirmed (PATROL to FOLLOW)",
        at_least(1),
    )
    # checked with CONFIRM_HITS, in `cross_checks`
    confirm_frames: int = setting(
        3, "kalman: the window, in frames, in which a candidate's detections count (see CONFIRM_HITS)"
    )
    gate: float = setting(
        0.999,
        "kalman: probability mass of the gate (chi-square, 2 degrees of freedom); a detection outside the followed "
        "target's gate is a miss of it",
        Check(lambda mass: 0 < mass < 1, "in (0, 1)"),
    )
    # checked with LOST_AFTER, in `cross_checks`
    coast_frames: int = setting(3, "kalman: frames in a row without the target that still send its predicted position")
    noise_m: float = setting(
        0.1, "kalman: standard deviation (m) of a detection's ground position, at zero depth", POSITIVE_FINITE
    )
    noise_per_m: float = setting(
        0.03,
        "kalman: growth of that standard deviation per metre of depth (m/m)",
        Check(lambda growth: 0 <= growth < math.inf, "non-negative"),
    )
    accel_noise: float = setting(
        4.0, "kalman: standard deviation (m/s^2) of the target's acceleration (process noise)", POSITIVE_FINITE
    )
    inference_threads: int | None = setting(
        None,
        "threads TensorFlow, PyTorch or OpenVINO split each network op over (JAX: XLA's own), 0 for one per core; "
        "at the simulator's 5 frames/s on a 2-core machine, TensorFlow answered sooner with 1 than with 2, OpenVINO "
        "with 2 than with 1 (docs/performance.md)",
        NON_NEGATIVE,
        derived="1 on keras, one per core on openvino",
    )
    runtime: str = setting(
        "auto",
        "what runs the network: keras, the Keras backend's compiled call; openvino, OpenVINO on the CPU, the model "
        "converted at start-up (KERAS_BACKEND=tensorflow), a frame in 0.4-0.5 of TensorFlow's time on a 2-core "
        "Intel Xeon (docs/performance.md); auto, openvino where it is installed and TensorFlow would compute on the "
        "CPU of an x86-64 machine, else keras",
        one_of("auto", *RUNTIMES),
        fold=str.lower,
    )
    max_image_side: int = setting(
        MAX_IMAGE_SIDE,
        "frames whose image headers declare more pixels than this a side are rejected before decoding (the "
        "simulator sends 256)",
        at_least(1),
    )
    fx: float | None = setting(
        None, "focal length in pixels along image columns", POSITIVE_FINITE, derived="the depth image width"
    )
    fy: float | None = setting(
        None, "focal length in pixels along image rows", POSITIVE_FINITE, derived="the depth image width"
    )
    cx: float | None = setting(None, "principal point column", FINITE, derived="half the depth image width")
    cy: float | None = setting(None, "principal point row", FINITE, derived="half the depth image width")
    stats_interval: float = setting(5.0, "seconds between statistics lines", POSITIVE)
    warn_interval: float = setting(
        5.0, "at most one warning per kind of rejected frame or dropped packet in this many seconds", NON_NEGATIVE
    )
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR", one_of(*LOG_LEVELS), fold=str.upper)
    record: str = setting(
        "", "directory to record every connection into, as <UTC time>.flight.jsonl.gz (see docs/flights.md)"
    )
    pred_viz: bool = setting(
        False, "print the address of the live view (also served without this flag) and open it in a browser"
    )
    names: InitVar[Mapping[str, str] | None] = None

    def __post_init__(self, names: Mapping[str, str] | None) -> None:
        problems = [(spec.key, expected) for spec in SETTINGS.values() if (expected := spec.rejects(self))]
        problems += [(key, expected) for key, holds, expected in self.cross_checks() if not holds]
        if problems:
            key, expected = problems[0]
            name = (names or {}).get(key, key)
            raise ConfigError(f"{name} must be {expected}. Received: {name}={getattr(self, key.lower())!r}")

    def cross_checks(self) -> list[tuple[str, bool, str]]:
        """The checks that span settings: (the setting named in the error, whether it holds, what it expects)."""
        return [
            ("CONFIRM_FRAMES", self.confirm_frames >= self.confirm_hits, "at least CONFIRM_HITS"),
            ("COAST_FRAMES", 0 <= self.coast_frames <= self.lost_after, "in [0, LOST_AFTER]"),
        ]

    def part(self, cls: type[Part]) -> Part:
        """The dataclass ``cls`` (such as `follower.pipeline.Settings`) with each field the setting of its name."""
        return cls(**{field.name: getattr(self, field.name) for field in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Setting:
    """One field of `FollowerConfig` as the command line and the environment see it."""

    name: str
    kind: type
    default: Any
    help: str
    check: Check | None
    derived: str | None
    fold: Callable[[str], str] | None

    @property
    def key(self) -> str:
        """The name in errors and in `resolve`'s layers: ``PORT``."""
        return self.name.upper()

    @property
    def flag(self) -> str:
        """``--port``."""
        return "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        """``FOLLOWER_PORT``."""
        return ENV_PREFIX + self.key

    def rejects(self, config: FollowerConfig) -> str | None:
        """What this setting's value in ``config`` must be, when it fails its check; else None (as does None, a
        derived default)."""
        value = getattr(config, self.name)
        if self.check is None or value is None or self.check.holds(value):
            return None
        return self.check.expected

    def convert(self, value: Any, name: str) -> Any:
        """``value`` converted to this setting's type, or ConfigError naming the setting as ``name``."""
        converted: Any
        try:
            if self.kind is bool:
                converted = value if isinstance(value, bool) else BOOLEANS[str(value).strip().lower()]
            else:
                converted = self.kind(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError, KeyError):
            expected = "true or false" if self.kind is bool else self.kind.__name__
            raise ConfigError(f"{name} must be {expected}. Received: {name}={value!r}") from None
        return converted if self.fold is None else self.fold(converted)


def _settings() -> dict[str, Setting]:
    """`FollowerConfig`'s fields by key, in declaration order."""
    hints = typing.get_type_hints(FollowerConfig)
    specs = {}
    for field in dataclasses.fields(FollowerConfig):
        hint = hints[field.name]
        kind = next(arg for arg in typing.get_args(hint) or (hint,) if arg is not type(None))  # float | None: float
        specs[field.name.upper()] = Setting(field.name, kind, field.default, **field.metadata)
    return specs


SETTINGS = _settings()


def from_environ(environ: Mapping[str, str]) -> Environment:
    """The settings present as ``FOLLOWER_KEY`` variables, raw strings."""
    return Environment({key: environ[spec.variable] for key, spec in SETTINGS.items() if spec.variable in environ})


def resolve(*layers: Mapping[str, Any]) -> FollowerConfig:
    """The defaults updated by each layer (``{"PORT": "6000"}``) in turn, converted and validated; raises
    ConfigError naming the setting as its layer spells it (an `Environment`'s as ``FOLLOWER_KEY``)."""
    values, names = {}, {}
    for layer in layers:
        for key, value in layer.items():
            if key not in SETTINGS:
                raise ConfigError(f"Unknown setting {key!r}; known: {', '.join(SETTINGS)}")
            if value is not None:
                names[key] = SETTINGS[key].variable if isinstance(layer, Environment) else key
                values[SETTINGS[key].name] = SETTINGS[key].convert(value, names[key])
    return FollowerConfig(**values, names=names)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--key`` flag per setting; unset flags parse as None, so they override nothing."""
    for key, spec in SETTINGS.items():
        shown = spec.derived or ("none" if spec.default == "" else spec.default)
        help_text = f"{spec.help} (default: {shown}; env {spec.variable})"
        if spec.kind is bool:
            parser.add_argument(spec.flag, dest=key, action="store_const", const=True, default=None, help=help_text)
        else:
            metavar = spec.kind.__name__.upper()
            parser.add_argument(spec.flag, dest=key, type=str, default=None, metavar=metavar, help=help_text)


def from_arguments(namespace: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags."""
    return {key: getattr(namespace, key) for key in SETTINGS if getattr(namespace, key, None) is not None}


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[argparse.Namespace, FollowerConfig]:
    """Parse the command line of ``python -m follower.serve``: (arguments, resolved settings).

    Exits with status 2 and a usage message for a bad flag or value, as argparse does.
    """
    parser = argparse.ArgumentParser(
        prog="python -m follower.serve",
        description="Follow-me inference server for the QuadSim simulator.",
    )
    parser.add_argument("weights", help="model to serve, e.g. weights/model_weights (NAME.keras + card)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = resolve(from_environ(os.environ if environ is None else environ), from_arguments(args))
    except ConfigError as error:
        parser.error(str(error))
    return args, config
