"""Closed-loop flights through the real server: the seeded episodes, each tracker, one table.

    python -m benchmarks.flights [--model weights/model_weights] [--compare MODEL] [--quick] [--realtime]
                                 [--json OUT] [-- FLAGS]

Every `EPISODES` world (`sim_bridge.world`, people cut out of ../shared/followme_data/train; drawn stand-ins when
it is absent) is flown by `sim_bridge.fly` against ``python -m follower.serve MODEL`` started with ``--tracker
none``, then with the default tracker, and, with ``--compare``, against a second model with the default tracker;
each by the simulator's own drone (``quadsim``) and by a drone that knows only the positions it is sent
(``coords``). Flights run in lockstep (the same events on any machine; ``--realtime``: at the simulator's 5
frames/s, as fast as this machine answers). ``FLAGS`` after ``--`` go to every server (``-- --lost-after 15``).
``--quick``: shorter episodes, the ``quadsim`` drone only, fewer rendered frames below, and validation's figures
from the model's card.

The score of each flight is `sim_bridge.flight_score`'s, plus ``lost_plain_view``: the ``object_lost`` events
sent while the hero had been visible for more than `PLAIN_VIEW_S` in a row. Targets, with the default tracker:
on every episode flown by the ``quadsim`` drone, FOLLOW on the hero for at least `FOLLOW_SHARE` of the hero's
visible time after acquisition, no FOLLOW entered on a bystander or on nothing, and ``lost_plain_view`` 0; flown
by the ``coords`` drone, the median distance kept to the hero within `KEPT_TOLERANCE_M` of the simulator's follow
distance.

**Renderer honesty.** Pasted people are easier for the network than real ones. So the model's per-image recall
(the Udacity score's "found", `models.evaluate.size_figures`) is measured on `HONESTY_VIEWS` rendered frames
(random views of random worlds, the hero 4 to 45 m away, sent through JPEG as a flight sends them) and on
validation's real images, by the truth's target size (`models.sizes`), and printed under the table.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import format_loads, machine
from benchmarks.run import DEFAULT_MODEL, ROOT
from benchmarks.tracking import follower_server, report, server_flags, split_argv
from follower import config as config_module
from sim_bridge.cutouts import Library, default_library
from sim_bridge.drone import BEHAVIOURS, FOLLOW_DISTANCE_M
from sim_bridge.flight_score import FlightLog, lost_after_visible, score
from sim_bridge.fly import fly
from sim_bridge.geometry import Pose
from sim_bridge.protocol import decode_rgb, encode_jpeg
from sim_bridge.render import render
from sim_bridge.world import Scene, build_world

VALIDATION = ROOT.parent / "shared" / "followme_data" / "validation"
EPISODES = {  # name → (seed, scene, quick scene)
    "far start": (
        11,
        Scene(duration_s=40.0, hero_distance_m=30.0, facing_hero=False),
        Scene(duration_s=12.0, hero_distance_m=30.0, facing_hero=False),
    ),
    "crowd of 8": (12, Scene(duration_s=30.0, bystanders=8), Scene(duration_s=12.0, bystanders=8)),
    "occluded 1-3 s": (
        13,
        Scene(duration_s=40.0, occlusions_s=(1.0, 2.0, 3.0)),
        Scene(duration_s=12.0, occlusions_s=(2.0,)),
    ),
    "crossing": (14, Scene(duration_s=30.0, crossings=2), Scene(duration_s=12.0, crossings=1)),
}
TRACKERS = ("none", "kalman")
PLAIN_VIEW_S = 1.0
FOLLOW_SHARE = 0.9
KEPT_TOLERANCE_M = 1.0
HONESTY_VIEWS = (400, 120)  # rendered frames for the renderer's recall: full, --quick
HONESTY_SEED = 7
HONESTY_DISTANCE_M = (4.0, 45.0)
SETTLE_S = 0.2


# ---------------------------------------------------------------------------------------------- flights


def flight_result(log: FlightLog, min_pixels: int) -> dict[str, Any]:
    """A flight's score with ``lost_plain_view``, the hero's visible time, the longest time it went unseen after it
    was first seen (an occlusion, or the drone looking away), and the time flown (s)."""
    seen = [frame.hero_pixels > min_pixels for frame in log.frames]
    runs = "".join("v" if visible else "-" for visible in seen).lstrip("-").split("v")
    return {
        **score(log, min_pixels),
        "lost_plain_view": lost_after_visible(log, min_pixels, PLAIN_VIEW_S),
        "visible_s": round(sum(seen) * log.frame_interval_s, 1),
        "longest_unseen_s": round(max(map(len, runs)) * log.frame_interval_s, 1),
        "flown_s": round(len(log.frames) * log.frame_interval_s, 1),
    }


def fly_episodes(
    url: str, library: Library, quick: bool, realtime: bool, min_pixels: int, label: str
) -> dict[str, dict[str, Any]]:
    """Every episode flown by each drone against the server at ``url``: ``{episode: {behaviour: result}}``."""
    behaviours = BEHAVIOURS[:1] if quick else BEHAVIOURS
    results: dict[str, dict[str, Any]] = {}
    for name, (seed, scene, quick_scene) in EPISODES.items():
        world = build_world(quick_scene if quick else scene, seed, library)
        results[name] = {}
        for behaviour in behaviours:
            print(f"  {label}: {name}, {behaviour} drone ({world.duration_s:g} s) ...", file=sys.stderr)
            log = fly(world, url, behaviour, lockstep=not realtime, settle_s=SETTLE_S)
            results[name][behaviour] = flight_result(log, min_pixels)
    return results


def servers(args: argparse.Namespace) -> list[tuple[str, Path, str]]:
    """(label, model, tracker) of each server the benchmark runs: the model with each tracker (the last is the
    default), then the ``--compare`` model with the default tracker."""
    runs = [(f"`--tracker {tracker}`", args.model, tracker) for tracker in TRACKERS]
    if args.compare:
        runs.append((f"{args.compare.name}, kalman", args.compare, "kalman"))
    return runs


# ---------------------------------------------------------------------------------------------- honesty


def honesty_frames(library: Library, count: int, seed: int = HONESTY_SEED) -> tuple[np.ndarray, np.ndarray]:
    """``count`` rendered frames (N, 256, 256, 3) as a flight sends them (through JPEG) and their classes: random
    worlds seen from random drone positions, the hero a log-uniform 4 to 45 m away and somewhere in the frame."""
    rng = np.random.default_rng(seed)
    images, classes = [], []
    for i in range(count):
        world = build_world(
            Scene(duration_s=1.0, bystanders=int(rng.integers(0, 7)), walls=0), seed * 1000 + i, library
        )
        target = world.hero.feet(0.0) + np.array([0.0, 0.0, 1.0])
        distance = math.exp(rng.uniform(*np.log(HONESTY_DISTANCE_M)))
        bearing, altitude = rng.uniform(0, 2 * math.pi), rng.uniform(3.0, 12.0)
        camera = target + np.array([-distance * math.cos(bearing), -distance * math.sin(bearing), altitude - 1.0])
        to_target = target - camera
        yaw = math.degrees(math.atan2(to_target[1], to_target[0])) + rng.uniform(-20, 20)
        pitch = math.degrees(math.atan2(-to_target[2], math.hypot(*to_target[:2]))) + rng.uniform(-15, 15)
        view = render(world, 0.0, Pose(*camera, 0.0, pitch, yaw))
        images.append(decode_rgb(encode_jpeg(view.rgb)))
        classes.append(view.truth.mask)
    return np.stack(images), np.stack(classes)


def recall_by_size(model: Any, name: str, images: np.ndarray, classes: np.ndarray, size: int) -> dict[str, Any]:
    """`models.evaluate.size_figures` of ``model`` on frames with their class maps (256x256)."""
    from models.evaluate import EvalSet, score_sets, size_figures
    from models.imaging import classes_to_mask, resize_rgb
    from models.scoring import truth_mask
    from models.sizes import target_areas

    eval_set = EvalSet(
        name,
        [f"{name}_{i:04d}" for i in range(len(images))],
        np.stack([resize_rgb(image, size) for image in images]),
        np.stack([truth_mask(classes_to_mask(c), (size, size)) for c in classes]),
        target_areas(classes),
    )
    _, details = score_sets(model, [eval_set])
    return size_figures([eval_set], details)


def honesty(model_path: Path, library: Library, quick: bool) -> dict[str, Any]:
    """The model's recall by target size on rendered frames and on validation's real ones (measured, or with
    ``quick`` the model card's figures when it has them)."""
    from models.evaluate import load_eval_set, score_sets, size_figures
    from models.store import load

    model, card = load(model_path)
    size = card["input_size"]
    images, classes = honesty_frames(library, HONESTY_VIEWS[quick])
    result = {"rendered": recall_by_size(model, "rendered", images, classes, size), "library": library.source}
    sizes = card.get("validation", {}).get("sizes")
    if quick and sizes:
        result["validation"], result["validation_from"] = sizes, "the model card"
    elif VALIDATION.is_dir():
        real = load_eval_set("validation", VALIDATION, size)
        result["validation"], result["validation_from"] = size_figures([real], score_sets(model, [real])[1]), "measured"
    return result


# ---------------------------------------------------------------------------------------------- run


def run(args: argparse.Namespace, given: dict[str, Any]) -> dict[str, Any]:
    """Every flight and the renderer's honesty, as a JSON-ready dict."""
    config = config_module.resolve(config_module.from_environ(os.environ), given)
    library = default_library()
    results: dict[str, Any] = {
        "machine": machine(),
        "load_average_start": os.getloadavg(),
        "server_flags": given,
        "people": library.source,
        "lockstep": not args.realtime,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="followme-flights-") as directory:
        for number, (label, model, tracker) in enumerate(servers(args)):
            with follower_server(model, tracker, given, Path(directory) / f"server{number}.log") as server:
                flights = fly_episodes(server.url, library, args.quick, args.realtime, config.min_pixels, label)
            default = model == args.model and tracker == TRACKERS[-1]
            results["runs"][label] = {"model": str(model), "tracker": tracker, "default": default, "episodes": flights}
    results["honesty"] = honesty(args.model, library, args.quick)
    results["load_average_end"] = os.getloadavg()
    return results


# ---------------------------------------------------------------------------------------------- report


def checks(result: dict[str, Any], behaviour: str) -> list[tuple[str, bool]]:
    """(target, met) of one flight of the default tracker."""
    if behaviour == "coords":
        kept = result["distance_kept_m"]["median"]
        met = kept is not None and abs(kept - FOLLOW_DISTANCE_M) <= KEPT_TOLERANCE_M
        return [(f"distance kept {FOLLOW_DISTANCE_M:g} ± {KEPT_TOLERANCE_M:g} m", met)]
    share = result["follow_share"]
    return [
        (f"FOLLOW share ≥ {FOLLOW_SHARE:.0%}", share is not None and share >= FOLLOW_SHARE),
        ("no wrong FOLLOW", result["wrong_follows"] == 0),
        (f"no lost in plain view (> {PLAIN_VIEW_S:g} s)", result["lost_plain_view"] == 0),
    ]


def cells(result: dict[str, Any]) -> list[str]:
    """A flight's measures as table cells."""

    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    error, frames = result["position_error_m"], result["frames"]
    return [
        number(result["acquisition_s"], ".1f"),
        number(result["follow_share"], ".0%"),
        str(result["wrong_follows"]),
        f"{result['lost_plain_view']} ({result['lost_while_visible']})",
        f"{result['wrong_follow_s']:.1f}",
        f"{number(error['median'], '.2f')} / {number(error['p90'], '.2f')}",
        number(result["distance_kept_m"]["median"], ".2f"),
        " / ".join(number(frames[key], "d") for key in ("answered", "dropped", "rejected")),
        f"{result['visible_s']:.0f} / {result['longest_unseen_s']:.1f} / {result['flown_s']:.0f}",
    ]


def honesty_lines(figures: dict[str, Any]) -> list[str]:
    """The renderer's honesty: recall by target size, rendered against validation."""

    def recall(bucket: dict[str, Any] | None) -> str:
        if not bucket or not bucket["images"]:
            return "-"
        return f"{bucket['found']}/{bucket['images']} ({bucket['found'] / bucket['images']:.0%})"

    rendered, real = figures["rendered"], figures.get("validation")
    lines = [
        "| target size (px of 256x256) | rendered frames | validation's real images |",
        "| --- | --- | --- |",
    ]
    for name, bucket in rendered["buckets"].items():
        lines.append(f"| {name} | {recall(bucket)} | {recall(real['buckets'][name] if real else None)} |")
    far = rendered["far"]
    lines.append(f"| far (4-100) | {recall(far)} | {recall(real['far'] if real else None)} |")
    source = f"validation: {figures['validation_from']}" if real else "validation: not found (../shared is absent)"
    lines.append(f"\nPeople cut from {figures['library']}; {source}.")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The results: the machine, one table of every flight, the renderer's honesty."""
    info = results["machine"]
    flags = " ".join(f"--{key.lower().replace('_', '-')} {value}" for key, value in results["server_flags"].items())
    loads = [format_loads(results[key]) for key in ("load_average_start", "load_average_end")]
    header = (
        "| episode | drone | server | acquisition (s) | FOLLOW on hero, share | wrong FOLLOW | lost in plain view "
        "(all while visible) | FOLLOW unseen (s) | position error median / p90 (m) | distance kept (m) | "
        "frames answered / dropped / rejected | hero visible / longest unseen / flown (s) | targets (default tracker) |"
    )
    lines = [
        f"Machine: {info['cpus']} CPU cores, {info['cpu_model']}; Python {info['python']}, Keras on "
        f"{info['backend']}. Load average (1/5/15 min): {loads[0]} at the start, {loads[1]} at the end. "
        f"Flights {'in lockstep' if results['lockstep'] else 'in real time'}; server flags: {flags or 'the defaults'}.",
        "",
        header,
        "|" + " --- |" * (header.count("|") - 1),
    ]
    first = next(iter(results["runs"].values()))["episodes"]
    for episode, behaviours in first.items():
        for behaviour in behaviours:
            for label, run_result in results["runs"].items():
                result = run_result["episodes"][episode][behaviour]
                verdict = ", ".join(f"{what}: {'yes' if met else '**no**'}" for what, met in checks(result, behaviour))
                verdict = verdict if run_result["default"] else ""
                lines.append(f"| {episode} | {behaviour} | {label} | {' | '.join(cells(result))} | {verdict} |")
    lines += [
        "",
        "Renderer honesty, the model's per-image recall by target size:",
        "",
        *honesty_lines(results["honesty"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table (and write the JSON with ``--json``)."""
    argv, own, flags = split_argv(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flights", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model (default: the shipped one)")
    parser.add_argument("--compare", type=Path, metavar="MODEL", help="also fly a second model (default tracker)")
    parser.add_argument("--quick", action="store_true", help="short episodes, the quadsim drone only")
    parser.add_argument("--realtime", action="store_true", help="fly at 5 frames/s instead of in lockstep")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(own)
    results = run(args, server_flags(flags))
    report(results, " ".join(["python -m benchmarks.flights", *argv]), markdown, args.json)


if __name__ == "__main__":
    main()
