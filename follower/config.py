"""The follower's settings: every default in `DEFAULTS`, overridden by ``FOLLOWER_*`` variables and flags.

Each key ``KEY`` is set by the environment variable ``FOLLOWER_KEY`` and by the flag ``--key`` (lower case,
dashes for underscores); flags win over the environment, the environment over the defaults. Values are
converted to the type of their default (float for the intrinsics, whose default ``None`` means "from the
depth image's width": fx = fy = W, cx = cy = W / 2) and checked once, here.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

ENV_PREFIX = "FOLLOWER_"
MAX_PING_INTERVAL_S = 2.0

DEFAULTS: dict[str, Any] = {
    "HOST": "127.0.0.1",
    "PORT": 4567,
    "PING_INTERVAL": 2.0,
    "PING_TIMEOUT": 10.0,
    "THRESHOLD": 0.5,
    "MIN_PIXELS": 10,
    "LOST_AFTER": 6,
    "TRACKER": "kalman",
    "CONFIRM_HITS": 2,
    "CONFIRM_FRAMES": 3,
    "GATE": 0.999,
    "COAST_FRAMES": 3,
    "NOISE_M": 0.1,
    "NOISE_PER_M": 0.03,
    "ACCEL_NOISE": 4.0,
    "INFERENCE_THREADS": 1,
    "FX": None,
    "FY": None,
    "CX": None,
    "CY": None,
    "STATS_INTERVAL": 5.0,
    "WARN_INTERVAL": 5.0,
    "LOG_LEVEL": "INFO",
    "RECORD": "",
}

HELP = {
    "HOST": "address to bind; the channel steers a drone and has no authentication, so keep it local",
    "PORT": "port to listen on (the simulator connects to 4567)",
    "PING_INTERVAL": f"seconds between server PINGs, at most {MAX_PING_INTERVAL_S:g} (the simulator's "
    "watchdog drops Follow after 3 s without one)",
    "PING_TIMEOUT": "seconds to wait for a PONG before dropping a client",
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
    "INFERENCE_THREADS": "threads TensorFlow splits each network op over, 0 for one per core; 1 answered the "
    "simulator's 5 frames/s faster than 2 on a 2-core machine (docs/performance.md)",
    "FX": "focal length in pixels along image columns (default: the depth image width)",
    "FY": "focal length in pixels along image rows (default: the depth image width)",
    "CX": "principal point column (default: half the depth image width)",
    "CY": "principal point row (default: half the depth image width)",
    "STATS_INTERVAL": "seconds between statistics lines",
    "WARN_INTERVAL": "at most one warning per kind of rejected frame in this many seconds",
    "LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
    "RECORD": "directory to record every connection into, as <UTC time>.flight.jsonl.gz (see docs/flights.md)",
}

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TRACKERS = ("kalman", "none")
CASE = {"LOG_LEVEL": str.upper, "TRACKER": str.lower}  # string settings compared case-insensitively


class ConfigError(ValueError):
    """A setting with a value of the wrong type or out of range."""


def value_type(key: str) -> type:
    """The type a setting's values are converted to."""
    default = DEFAULTS[key]
    return float if default is None else type(default)


def from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings present as ``FOLLOWER_KEY`` variables, raw strings."""
    return {key: environ[ENV_PREFIX + key] for key in DEFAULTS if ENV_PREFIX + key in environ}


def resolve(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults updated by each layer in turn, converted and validated; raises ConfigError."""
    config = dict(DEFAULTS)
    for layer in layers:
        for key, value in layer.items():
            if key not in DEFAULTS:
                raise ConfigError(f"Unknown setting {key!r}; known: {', '.join(DEFAULTS)}")
            if value is not None:
                config[key] = _convert(key, value)
    _validate(config)
    return config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--key`` flag per setting; unset flags parse as None, so they override nothing."""
    for key, default in DEFAULTS.items():
        shown = "derived" if default is None else "none" if default == "" else default
        parser.add_argument(
            "--" + key.lower().replace("_", "-"),
            dest=key,
            type=str,
            default=None,
            metavar=value_type(key).__name__.upper(),
            help=f"{HELP[key]} (default: {shown}; env {ENV_PREFIX}{key})",
        )


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
    parser.add_argument(
        "--pred-viz",
        action="store_true",
        help="print the address of the live view (also served without this flag) and open it in a browser",
    )
    args = parser.parse_args(argv)
    try:
        config = resolve(from_environ(os.environ if environ is None else environ), from_arguments(args))
    except ConfigError as error:
        parser.error(str(error))
    return args, config


def _convert(key: str, value: Any) -> Any:
    """``value`` converted to the setting's type, or ConfigError naming the key."""
    kind = value_type(key)
    try:
        converted = kind(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be {kind.__name__}. Received: {key}={value!r}") from None
    return CASE[key](converted) if key in CASE else converted


def _validate(config: dict[str, Any]) -> None:
    """Range checks that span the whole configuration."""
    checks = [
        ("PORT", 0 < config["PORT"] < 65536, "between 1 and 65535"),
        (
            "PING_INTERVAL",
            0 < config["PING_INTERVAL"] <= MAX_PING_INTERVAL_S,
            f"in (0, {MAX_PING_INTERVAL_S}]",
        ),
        ("PING_TIMEOUT", config["PING_TIMEOUT"] > 0, "positive"),
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
        ("INFERENCE_THREADS", config["INFERENCE_THREADS"] >= 0, "non-negative"),
        ("STATS_INTERVAL", config["STATS_INTERVAL"] > 0, "positive"),
        ("WARN_INTERVAL", config["WARN_INTERVAL"] >= 0, "non-negative"),
        ("LOG_LEVEL", config["LOG_LEVEL"] in LOG_LEVELS, f"one of {', '.join(LOG_LEVELS)}"),
    ]
    checks += [(key, config[key] is None or 0 < config[key] < math.inf, "positive") for key in ("FX", "FY")]
    checks += [(key, config[key] is None or math.isfinite(config[key]), "finite") for key in ("CX", "CY")]
    for key, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{key} must be {expected}. Received: {key}={config[key]!r}")
