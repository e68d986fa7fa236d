"""The tracker against the frame-by-frame follower, through the real server: same flights, same run, one table.

    python -m benchmarks.tracking [--model weights/model_weights] [--quick] [--speed X] [--json OUT]
                                  [--results docs/results.md | --no-results] [-- FLAGS]

Each flight is played by `sim_bridge.replay.play`, as the simulator sends frames (its recorded timing, 5
frames/s), against ``python -m follower.serve MODEL`` started once with ``--tracker none`` and once with the
default tracker. ``FLAGS`` after ``--`` go to both servers (``-- --min-pixels 40``), as ``FOLLOWER_*`` variables.

1. **No target**: the images of ../shared/followme_data/validation whose mask has no target (its blue channel
   covers at most `TARGET_MASK_PIXELS` pixels), in file order, with the depth of a flat ground and a fixed gimbal
   pose (`POSE`). Every ``object_detected`` is a phantom; every "found" (an ``object_detected`` in PATROL) a
   phantom PATROL → FOLLOW switch.
2. **With target**: the other validation images, the same way: frames answered with ``object_detected``, and the
   found and lost transitions.
3. **Synthetic** (`sim_bridge.synth`, with ground truth), `SYNTH_FRAMES` frames each: a walking target; a
   standing one, seen by a drone that jitters like one hovering in wind (`WOBBLE_M`); a walking one hidden for
   1, 2 and 3 frames, with a person dressed like it 3.6 m from it, nearer the camera, for single frames.
   Acquisition delay: frames from the first in which the truth mask holds more than the server's ``MIN_PIXELS``
   target pixels to the first answered within `ACQUIRED_M` of the target. Localization error: median distance
   from the positions sent to the truth, over the frames in which the target is visible. Jitter (standing
   target): the frame-to-frame change of the position sent, over consecutive frames both answered. FOLLOW held:
   no ``object_lost`` during the flight's follow part. Distractor frames answered more than `PULLED_M` from the
   target.

The validation flights are skipped, with the reason, when ../shared is absent. The table also replaces this
benchmark's block of the results page (`benchmarks.results_page`; not with ``--quick`` unless ``--results`` names
the page).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from benchmarks import results_page
from benchmarks.machine import format_loads, machine
from benchmarks.run import DEFAULT_MODEL, ROOT
from benchmarks.servers import ServerProcess
from follower import config as config_module
from sim_bridge.flight import Flight, RecordedFrame, read_flight
from sim_bridge.geometry import Intrinsics, Pose
from sim_bridge.summary import DETECTED, LOST, Response, summarize
from sim_bridge.synth import TARGET, follow_span, pixel_rays, synthesize

VALIDATION = ROOT.parent / "shared" / "followme_data" / "validation"
POSE = Pose(0.0, 0.0, 10.0, 0.0, 45.0, 0.0)  # 10 m up, the camera 45° down: every pixel sees the ground
IMAGE_SIZE = 256
SIM_RATE = 5.0
START_S = 1_700_000_000.0
TARGET_MASK_PIXELS = 3
QUICK_IMAGES = (250, 100)  # no-target and with-target validation images with --quick
SYNTH_FRAMES = 100
WOBBLE_M = 0.3  # the standing flight's drone jitters like a hovering drone in wind
HIDDEN = {45, 52, 53, 60, 61, 62}  # occlusions of 1, 2 and 3 frames, inside the follow part (35 to 74)
DISTRACTORS = {48, 56, 66}
SYNTHETIC = {  # name → synthesize() options
    "walking": {"seed": 1},
    "standing": {"seed": 2, "target_speed": 0.0, "wobble": WOBBLE_M},
    "occluded": {"seed": 4, "hidden": HIDDEN, "distractors": DISTRACTORS},
}
PULLED_M = 1.0
ACQUIRED_M = 1.0
TRACKERS = ("none", "kalman")


# ---------------------------------------------------------------------------------------------- flights


def ground_depth(pose: Pose = POSE, size: int = IMAGE_SIZE) -> np.ndarray:
    """The z-depth (m, (size, size)) of the flat ground z = 0 seen from ``pose`` with the default intrinsics."""
    rays = pose.rotation @ pixel_rays(Intrinsics.default(size), size)
    if not (rays[2] < 0).all():
        raise ValueError(f"the camera must see only ground. Received: pose={pose}")
    return (-pose.z / rays[2]).reshape(size, size)


def image_flight(images: Sequence[Path], depth_m: np.ndarray) -> Flight:
    """A flight of JPEG images (sent as they are) at `SIM_RATE`, all with ``depth_m`` and `POSE`."""
    from PIL import Image

    from sim_bridge.protocol import build_sensor_frame

    frames = []
    for index, path in enumerate(images):
        t = START_S + index / SIM_RATE
        data = build_sensor_frame(t, POSE, POSE, np.asarray(Image.open(path).convert("RGB")), depth_m)
        data["rgb_image"] = base64.b64encode(path.read_bytes()).decode("ascii")  # not re-encoded
        frames.append(RecordedFrame(index, t, data))
    return Flight({"source": f"benchmarks.tracking, {len(frames)} validation images"}, frames)


def validation_flights(quick: bool) -> dict[str, Flight]:
    """The no-target and with-target flights of the validation images (first ones only with ``quick``)."""
    from PIL import Image

    images = sorted((VALIDATION / "images").glob("*.jpeg"))
    masks = sorted((VALIDATION / "masks").glob("*.png"))
    if not images or len(images) != len(masks):
        raise SystemExit(f"error: {VALIDATION} must hold images/*.jpeg and as many masks/*.png")
    present = [
        np.count_nonzero(np.asarray(Image.open(mask).convert("RGB"))[..., 2] > 127) > TARGET_MASK_PIXELS
        for mask in masks
    ]
    without = [image for image, target in zip(images, present) if not target]
    with_target = [image for image, target in zip(images, present) if target]
    if quick:
        without, with_target = without[: QUICK_IMAGES[0]], with_target[: QUICK_IMAGES[1]]
    depth = ground_depth()
    return {"no target": image_flight(without, depth), "with target": image_flight(with_target, depth)}


def synthetic_flights(directory: Path) -> dict[str, Flight]:
    """The `SYNTHETIC` flights, written into ``directory`` and read back."""
    flights = {}
    for name, options in SYNTHETIC.items():
        path = directory / f"{name}.flight.jsonl.gz"
        synthesize(path, SYNTH_FRAMES, **options)
        flights[name] = read_flight(path)
    return flights


# ---------------------------------------------------------------------------------------------- measures


def sent_positions(responses: Sequence[Response]) -> dict[int, np.ndarray]:
    """The position sent with ``object_detected`` for each frame answered with one."""
    return {r.frame: np.asarray(r.data["coords"], dtype=np.float64) for r in responses if r.name == DETECTED}


def acquisition_delay(flight: Flight, positions: dict[int, np.ndarray], min_pixels: int) -> int | None:
    """Frames from the first frame whose truth mask holds more than ``min_pixels`` target pixels to the first
    frame from then on answered within `ACQUIRED_M` of the target (None when either never happens)."""
    visible = [f.index for f in flight.frames if np.count_nonzero(f.truth.mask == TARGET) > min_pixels]
    if not visible:
        return None
    on_target = [
        f.index
        for f in flight.frames[visible[0] :]
        if f.index in positions and np.linalg.norm(positions[f.index] - f.truth.position) <= ACQUIRED_M
    ]
    return on_target[0] - visible[0] if on_target else None


def jitter_m(positions: dict[int, np.ndarray]) -> dict[str, float | None]:
    """Median and p90 (m) of the change of the position sent between consecutive frames both answered."""
    steps = [np.linalg.norm(positions[i] - positions[i - 1]) for i in sorted(positions) if i - 1 in positions]
    if not steps:
        return {"median": None, "p90": None}
    return {"median": float(np.median(steps)), "p90": float(np.percentile(steps, 90))}


def measure(flight: Flight, frames_sent: int, responses: list[Response], min_pixels: int) -> dict[str, Any]:
    """The summary of one flight's answers (`sim_bridge.summary`) and the measures above."""
    summary = summarize(flight.frames, frames_sent, responses)
    positions = sent_positions(responses)
    transitions = [t["event"] for t in summary["transitions"]]
    result = {
        "frames": frames_sent,
        "detected_events": summary["events"].get(DETECTED, 0),
        "frames_detected": len(positions),
        "found": transitions.count("found"),
        "lost": transitions.count("lost"),
    }
    if flight.has_truth:
        follow_end = follow_span(len(flight.frames))[1]
        truths = {frame.index: frame.truth.position for frame in flight.frames}
        errors = [
            np.linalg.norm(p - truths[f.index])
            for f in flight.frames
            if f.truth.visible and (p := positions.get(f.index)) is not None
        ]
        result |= {
            "acquisition_delay": acquisition_delay(flight, positions, min_pixels),
            "loc_err_m": float(np.median(errors)) if errors else None,
            "jitter_m": jitter_m(positions),
            "lost_while_following": sum(r.name == LOST and r.frame < follow_end for r in responses),
            "distractors_pulled": sum(
                f in positions and np.linalg.norm(positions[f] - truths[f]) > PULLED_M for f in DISTRACTORS
            ),
        }
    return result


# ---------------------------------------------------------------------------------------------- servers


def server_flags(flags: Sequence[str]) -> dict[str, Any]:
    """The follower settings given as server flags, checked by `follower.config`; --tracker is the benchmark's."""
    parser = argparse.ArgumentParser(prog="benchmarks.tracking -- FLAGS")
    config_module.add_arguments(parser)
    given = config_module.from_arguments(parser.parse_args(list(flags)))
    if "TRACKER" in given:
        parser.error("--tracker is set by the benchmark: it runs every flight with each tracker")
    try:
        config_module.resolve(config_module.from_environ(os.environ), given)
    except config_module.ConfigError as error:
        parser.error(str(error))
    return given


@contextlib.contextmanager
def follower_server(model: Path, tracker: str, given: dict[str, Any], log: Path) -> Iterator[ServerProcess]:
    """``python -m follower.serve MODEL`` with ``tracker`` and the server flags ``given`` (`server_flags`), set as
    ``FOLLOWER_*`` variables, its log in ``log``."""
    environ = {config_module.ENV_PREFIX + key: str(value) for key, value in {**given, "TRACKER": tracker}.items()}
    with mock.patch.dict(os.environ, environ), ServerProcess(model, log_path=log).wait_listening() as server:
        yield server


def fly(model: Path, tracker: str, flights: dict[str, Flight], given: dict[str, Any], speed: float, log: Path):
    """Play every flight against one server with ``tracker``: ``{name: (frames sent, responses)}``."""
    from sim_bridge.replay import play

    with follower_server(model, tracker, given, log) as server:
        answers = {}
        for name, flight in flights.items():
            print(f"  {tracker}: {name} ({len(flight.frames)} frames) ...", file=sys.stderr)
            played = play(flight, server.url, speed)
            answers[name] = played.sent, played.responses
    return answers


def run(args: argparse.Namespace, given: dict[str, Any]) -> dict[str, Any]:
    """Every measurement, as a JSON-ready dict."""
    config = config_module.resolve(config_module.from_environ(os.environ), given)
    results: dict[str, Any] = {"machine": machine(), "load_average_start": os.getloadavg(), "server_flags": given}
    flights: dict[str, Flight] = {}
    if VALIDATION.is_dir():
        flights |= validation_flights(args.quick)
    else:
        results["skipped"] = f"validation flights: {VALIDATION} not found (../shared is absent)"
        print(f"skipping the {results['skipped']}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="followme-tracking-") as directory:
        flights |= synthetic_flights(Path(directory))
        for tracker in TRACKERS:
            answers = fly(args.model, tracker, flights, given, args.speed, Path(directory) / f"{tracker}.log")
            results[tracker] = {name: measure(flights[name], *answers[name], config.min_pixels) for name in flights}
    results["load_average_end"] = os.getloadavg()
    return results


# ---------------------------------------------------------------------------------------------- report


def markdown(results: dict[str, Any]) -> str:
    """The results as one Markdown table, with the machine."""
    none, kalman, info = results["none"], results["kalman"], results["machine"]
    checks = []  # (flight, measure, cell of one tracker's result, target, whether the default meets it)
    if "no target" in kalman:
        phantom = kalman["no target"]
        checks += [
            ("no target", "phantom `object_detected` sent", lambda r: r["detected_events"], "", None),
            (
                "no target",
                "phantom PATROL → FOLLOW switches (per 1,000 frames)",
                lambda r: f"{r['found']} ({1000.0 * r['found'] / max(r['frames'], 1):.1f})",
                "≤ 1 per 1,000",
                1000.0 * phantom["found"] / max(phantom["frames"], 1) <= 1.0,
            ),
            ("with target", "frames answered with `object_detected`", lambda r: r["frames_detected"], "", None),
            ("with target", "found / lost transitions", lambda r: f"{r['found']} / {r['lost']}", "", None),
        ]
    for name in SYNTHETIC:
        delay = kalman[name]["acquisition_delay"]
        checks.append(
            (
                name,
                "acquisition delay (frames)",
                lambda r: _value(r["acquisition_delay"], "d"),
                "≤ 2",
                _at_most(delay, 2),
            )
        )
    for name in SYNTHETIC:
        ok = _at_most(_mm(kalman[name]["loc_err_m"]), _mm(none[name]["loc_err_m"]))  # to the millimetre shown
        checks.append((name, "localization error, median (m)", lambda r: _value(r["loc_err_m"], ".3f"), "≤ none's", ok))
    still = none["standing"]["jitter_m"]["median"]
    checks += [
        (
            "standing",
            "jitter: frame-to-frame change sent, median / p90 (m)",
            lambda r: f"{_value(r['jitter_m']['median'], '.3f')} / {_value(r['jitter_m']['p90'], '.3f')}",
            "median ≤ half none's",
            _at_most(kalman["standing"]["jitter_m"]["median"], None if still is None else still / 2),
        ),
        (
            "occluded",
            "`object_lost` while following (hidden 1, 2 and 3 frames)",
            lambda r: r["lost_while_following"],
            "0",
            kalman["occluded"]["lost_while_following"] == 0,
        ),
        (
            "occluded",
            f"distractor frames answered > {PULLED_M:g} m from the target (of {len(DISTRACTORS)})",
            lambda r: r["distractors_pulled"],
            "",
            None,
        ),
    ]
    flags = " ".join(f"--{key.lower().replace('_', '-')} {value}" for key, value in results["server_flags"].items())
    lines = [
        f"Machine: {info['cpus']} CPU cores, {info['cpu_model']}; Python {info['python']}, Keras on "
        f"{info['backend']}. Load average (1/5/15 min): {format_loads(results['load_average_start'])} at the start, "
        f"{format_loads(results['load_average_end'])} at the end. Server flags: {flags or 'the defaults'}.",
        "",
        "| flight (frames) | measure | `--tracker none` | `--tracker kalman` (default) | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for flight, what, cell, target, met in checks:
        verdict = "" if met is None else "yes" if met else "**no**"
        lines.append(
            f"| {flight} ({kalman[flight]['frames']}) | {what} | {cell(none[flight])} | {cell(kalman[flight])} | "
            f"{target} | {verdict} |"
        )
    if "skipped" in results:
        lines += ["", f"Skipped: {results['skipped']}."]
    return "\n".join(lines)


def _value(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _mm(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _at_most(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value <= limit + 1e-9


def split_argv(argv: Sequence[str] | None) -> tuple[list[str], list[str], list[str]]:
    """(every argument, the benchmark's own, the server ``FLAGS`` after ``--``) of a command line (default: ours)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    return argv, argv[:split], argv[split + 1 :]


def report(results: dict[str, Any], command: str, table: Callable[[dict], str], path: Path | None) -> None:
    """Note the ``command`` in the results, print them as ``table`` makes them, and write them as JSON to ``path``
    when given."""
    results["command"] = command
    print(table(results))
    if path:
        path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table (and write the JSON with ``--json``)."""
    argv, own, flags = split_argv(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracking", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model (default: the shipped one)")
    parser.add_argument("--quick", action="store_true", help=f"only the first {QUICK_IMAGES} validation images")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default: 1.0, 5 frames/s)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    results_page.add_arguments(parser)
    args = parser.parse_args(own)
    if not args.speed > 0:
        parser.error(f"--speed must be positive. Received: --speed={args.speed}")
    results = run(args, server_flags(flags))
    report(results, " ".join(["python -m benchmarks.tracking", *argv]), markdown, args.json)
    results_page.publish(args, "benchmarks.tracking", results, markdown(results))


if __name__ == "__main__":
    main()
