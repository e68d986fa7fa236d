"""The follower's settings: every default in `DEFAULTS`, overridden by ``FOLLOWER_*`` variables and flags.

Each key ``KEY`` is set by the environment variable ``FOLLOWER_KEY`` and by the flag ``--key`` (lower case,
dashes for underscores); flags win over the environment, the environment over the defaults. Values are
converted to the type of their default (float for the intrinsics, whose default ``None`` means "from the
depth image's width": fx = fy = W, cx = cy = W / 2; a switch such as ``--pred-viz`` is a flag without a value,
and ``true``/``false``, ``1``/``0``, ``yes``/``no`` or ``on``/``off`` in its variable) and checked once, here.
Errors name what the user typed: ``FOLLOWER_PORT`` for the environment, ``PORT`` for a flag's value.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from sim_bridge.protocol import MAX_IMAGE_SIDE

ENV_PREFIX = "FOLLOWER_"
MAX_PING_INTERVAL_S = 2.0

DEFAULTS: dict[str, Any] = {
    "HOST": "127.0.0.1",
    "PORT": 4567,
    "PING_INTERVAL": 2.0,
    "PING_TIMEOUT": 10.0,
    "MAX_CONNECTIONS": 8,
    "THRESHOLD": 0.5,
    "MIN_PIXELS": 5,
    "LOST_AFTER": 6,
    "TRACKER": "kalman",
    "CONFIRM_HITS": 2,
    "CONFIRM_FRAMES": 3,
    "GATE": 0.999,
    "COAST_FRAMES": 3,
    "NOISE_M": 0.1,
    "NOISE_PER_M": 0.03,
    "ACCEL_NOISE": 4.0,
    "INFERENCE_THREADS": None,
    "RUNTIME": "auto",
    "MAX_IMAGE_SIDE": MAX_IMAGE_SIDE,
    "FX": None,
    "FY": None,
    "CX": None,
    "CY": None,
    "STATS_INTERVAL": 5.0,
    "WARN_INTERVAL": 5.0,
    "LOG_LEVEL": "INFO",
    "RECORD": "",
    "PRED_VIZ": False,
}

HELP = {
    "HOST": "address to bind; the channel steers a drone and has no authentication, so keep it local",
    "PORT": "port to listen on (the simulator connects to 4567)",
    "PING_INTERVAL": f"seconds between server PINGs, at most {MAX_PING_INTERVAL_S:g} (the simulator's "
    "watchdog drops Follow after 3 s without one)",
    "PING_TIMEOUT": "seconds to wait for a PONG before dropping a client",
    "MAX_CONNECTIONS": "simulators served at once, each with its own follower; more are refused with a log line "
    "(the live view's page does not count)",
    "THRESHOLD": "target probability above which a pixel belongs to the target mask",
    "MIN_PIXELS": "the target is present when its mask covers more than this many pixels of the camera frame "
    "(native pixels, whatever the model's output size)",
    "LOST_AFTER": "the target is lost after more than this many frames in a row without a detection of it",
    "TRACKER": "kalman: confirm, filter and coast (docs in follower/tracking.py); none: every detection is sent, "
    "frame by frame, as the original follower did",
    "CONFIRM_HITS": "kalman: detections a candidate needs within its last CONFIRM_FRAMES frames to be confirmed "
    "(PATROL to FOLLOW)",
    "CONFIRM_FRAMES": "kalman: the window, in frames, in which a candidate's detections count (see CONFIRM_HITS)",
    "GATE": "kalman: probability mass of the gate (chi-square, 2 degrees of freedom); a detection outside the "
    "followed target's gate is a miss of it",
    "COAST_FRAMES": "kalman: frames in a row without the target that still send its predicted position",
    "NOISE_M": "kalman: standard deviation (m) of a detection's ground position, at zero depth",
    "NOISE_PER_M": "kalman: growth of that standard deviation per metre of depth (m/m)",
    "ACCEL_NOISE": "kalman: standard deviation (m/s^2) of the target's acceleration (process noise)",
    "MAX_IMAGE_SIDE": "frames whose image headers declare more pixels than this a side are rejected before "
    "decoding (the simulator sends 256)",
    "INFERENCE_THREADS": "threads TensorFlow, PyTorch or OpenVINO split each network op over (JAX: XLA's own), 0 for "
    "one per core; at the simulator's 5 frames/s on a 2-core machine, TensorFlow answered sooner with 1 than with 2, "
    "OpenVINO with 2 than with 1 (docs/performance.md)",
    "RUNTIME": "what runs the network: keras, the Keras backend's compiled call; openvino, OpenVINO on the CPU, "
    "the model converted at start-up (KERAS_BACKEND=tensorflow), a frame in 0.4-0.7 of TensorFlow's time on an "
    "Intel Xeon (docs/performance.md); auto, openvino where it is installed and TensorFlow would compute on the CPU "
    "of an x86-64 machine, else keras",
    "FX": "focal length in pixels along image columns",
    "FY": "focal length in pixels along image rows",
    "CX": "principal point column",
    "CY": "principal point row",
    "STATS_INTERVAL": "seconds between statistics lines",
    "WARN_INTERVAL": "at most one warning per kind of rejected frame or dropped packet in this many seconds",
    "LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
    "RECORD": "directory to record every connection into, as <UTC time>.flight.jsonl.gz (see docs/flights.md)",
    "PRED_VIZ": "print the address of the live view (also served without this flag) and open it in a browser",
}
# What a default of None stands for, in --help.
DERIVED = {
    "FX": "the depth image width",
    "FY": "the depth image width",
    "CX": "half the depth image width",
    "CY": "half the depth image width",
    "INFERENCE_THREADS": "1 on keras, one per core on openvino",
}
# Settings whose default None stands for a value derived at start-up, and the type their values convert to.
TYPES = {"INFERENCE_THREADS": int}
BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TRACKERS = ("kalman", "none")
RUNTIMES = ("keras", "openvino")  # what can run the network; RUNTIME also takes "auto"
# String settings compared case-insensitively.
CASE = {"LOG_LEVEL": str.upper, "TRACKER": str.lower, "RUNTIME": str.lower}


class ConfigError(ValueError):
    """A setting with a value of the wrong type or out of range."""


class Environment(dict):
    """Settings read from ``FOLLOWER_*`` variables, raw strings: errors name the variable (``FOLLOWER_PORT``)."""


def value_type(key: str) -> type:
    """The type a setting's values are converted to."""
    if key in TYPES:
        return TYPES[key]
    default = DEFAULTS[key]
    return float if default is None else type(default)


def from_environ(environ: Mapping[str, str]) -> Environment:
    """The settings present as ``FOLLOWER_KEY`` variables, raw strings."""
    return Environment({key: environ[ENV_PREFIX + key] for key in DEFAULTS if ENV_PREFIX + key in environ})


def resolve(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults updated by each layer in turn, converted and validated; raises ConfigError naming the
    setting as its layer spells it (an `Environment`'s as ``FOLLOWER_KEY``)."""
    config = dict(DEFAULTS)
    names = {key: key for key in DEFAULTS}
    for layer in layers:
        for key, value in layer.items():
            if key not in DEFAULTS:
                raise ConfigError(f"Unknown setting {key!r}; known: {', '.join(DEFAULTS)}")
            if value is not None:
                names[key] = ENV_PREFIX + key if isinstance(layer, Environment) else key
                config[key] = _convert(key, value, names[key])
    _validate(config, names)
    return config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--key`` flag per setting; unset flags parse as None, so they override nothing."""
    for key, default in DEFAULTS.items():
        shown = DERIVED.get(key, "none" if default == "" else default)
        flag, help_text = "--" + key.lower().replace("_", "-"), f"{HELP[key]} (default: {shown}; env {ENV_PREFIX}{key})"
        if value_type(key) is bool:
            parser.add_argument(flag, dest=key, action="store_const", const=True, default=None, help=help_text)
        else:
            metavar = value_type(key).__name__.upper()
            parser.add_argument(flag, dest=key, type=str, default=None, metavar=metavar, help=help_text)


def from_arguments(namespace: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags."""
    return {key: getattr(namespace, key) for key in DEFAULTS if getattr(namespace, key, None) is not None}


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[argparse.Namespace, dict[str, Any]]:
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


def _convert(key: str, value: Any, name: str) -> Any:
    """``value`` converted to the setting's type, or ConfigError naming the setting as ``name``."""
    kind = value_type(key)
    try:
        converted = _to_bool(value) if kind is bool else kind(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, KeyError):
        expected = "true or false" if kind is bool else kind.__name__
        raise ConfigError(f"{name} must be {expected}. Received: {name}={value!r}") from None
    return CASE[key](converted) if key in CASE else converted


def _to_bool(value: Any) -> bool:
    """A switch's value: a bool, or one of `BOOLEANS` (any case); KeyError otherwise."""
    return value if isinstance(value, bool) else BOOLEANS[str(value).strip().lower()]


def _validate(config: dict[str, Any], names: Mapping[str, str]) -> None:
    """Range checks that span the whole configuration; errors name each setting as ``names`` spells it."""
    checks = [
        ("PORT", 0 < config["PORT"] < 65536, "between 1 and 65535"),
        (
            "PING_INTERVAL",
            0 < config["PING_INTERVAL"] <= MAX_PING_INTERVAL_S,
            f"in (0, {MAX_PING_INTERVAL_S}]",
        ),
        ("PING_TIMEOUT", config["PING_TIMEOUT"] > 0, "positive"),
        ("MAX_CONNECTIONS", config["MAX_CONNECTIONS"] >= 1, "at least 1"),
        ("THRESHOLD", 0 <= config["THRESHOLD"] < 1, "in [0, 1)"),
        ("MIN_PIXELS", config["MIN_PIXELS"] >= 0, "non-negative"),
        ("LOST_AFTER", config["LOST_AFTER"] >= 0, "non-negative"),
        ("TRACKER", config["TRACKER"] in TRACKERS, f"one of {', '.join(TRACKERS)}"),
        ("CONFIRM_HITS", config["CONFIRM_HITS"] >= 1, "at least 1"),
        ("CONFIRM_FRAMES", config["CONFIRM_FRAMES"] >= config["CONFIRM_HITS"], "at least CONFIRM_HITS"),
        ("GATE", 0 < config["GATE"] < 1, "in (0, 1)"),
        ("COAST_FRAMES", 0 <= config["COAST_FRAMES"] <= config["LOST_AFTER"], "in [0, LOST_AFTER]"),
        ("NOISE_M", 0 < config["NOISE_M"] < math.inf, "positive"),
        ("NOISE_PER_M", 0 <= config["NOISE_PER_M"] < math.inf, "non-negative"),
        ("ACCEL_NOISE", 0 < config["ACCEL_NOISE"] < math.inf, "positive"),
        ("INFERENCE_THREADS", config["INFERENCE_THREADS"] is None or config["INFERENCE_THREADS"] >= 0, "non-negative"),
        ("RUNTIME", config["RUNTIME"] in ("auto", *RUNTIMES), f"one of auto, {', '.join(RUNTIMES)}"),
        ("MAX_IMAGE_SIDE", config["MAX_IMAGE_SIDE"] >= 1, "at least 1"),
        ("STATS_INTERVAL", config["STATS_INTERVAL"] > 0, "positive"),
        ("WARN_INTERVAL", config["WARN_INTERVAL"] >= 0, "non-negative"),
        ("LOG_LEVEL", config["LOG_LEVEL"] in LOG_LEVELS, f"one of {', '.join(LOG_LEVELS)}"),
    ]
    checks += [(key, config[key] is None or 0 < config[key] < math.inf, "positive") for key in ("FX", "FY")]
    checks += [(key, config[key] is None or math.isfinite(config[key]), "finite") for key in ("CX", "CY")]
    for key, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{names[key]} must be {expected}. Received: {names[key]}={config[key]!r}")
