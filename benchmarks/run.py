"""The follower's performance on this machine, end to end: one command, a Markdown table, a JSON file.

    python -m benchmarks.run [--model M] [--compare M2] [--clients N] [--frames 200] [--memory-frames 10000]
                             [--quick] [--json benchmarks/results.json] [--results docs/results.md | --no-results]

1. A synthetic flight (`sim_bridge.synth`, seed 1); the benchmark frames are those whose truth says the target is
   visible and in which the model, run in process, locates it. They are sent in a loop.
2. End to end over the socket: the real server (``python -m follower.serve``) in a subprocess, driven by
   `sim_bridge.client.SimulatorClient` exactly as the simulator drives it, one frame every 0.2 s (5 frames/s, the
   simulator's rate); each frame's latency is the time from sending ``sensor_frame`` to receiving its
   ``object_detected``. A frame answered later than 0.2 s delays the next one (one frame in flight at a time).
3. The same frames, the same way, through `benchmarks.naive_server` (the 2017 approach: ``model.predict()`` per
   frame on the socket hub), in the same run; the ratios are naive / ours.
4. In process, on the runtime and inference threads the servers get (``FOLLOWER_RUNTIME``,
   ``FOLLOWER_INFERENCE_THREADS`` or their defaults): the time of each stage, back to back, and of the whole
   `follower.pipeline.process_frame` at 5 frames/s, offline frames/s (`follower.replay`) and resident memory over
   ``--memory-frames`` frames through `process_frame`; beside them, the served frame's way stage by
   stage (`WATERFALL`, from the server's ``/metrics``), and what the socket and the client add: the mean
   end-to-end latency minus the server's stages, beside the bare socket's round trip (`round_trips`).
5. With ``--compare M2``: a second follower, serving M2 (say the previous default model), on the same frames (those
   both models locate), taking turns with ours frame by frame (each still at 5 frames/s), so that load from
   elsewhere falls on both alike; the cost ratio is our p50 / M2's p50.
6. With ``--clients N``: N simulators at once on the same server, each a client of its own sending at 5 frames/s
   without waiting for answers, as the simulator does (their starts spread over a frame interval); per client,
   the frames answered before its next one and the latency of those, against the single client's p50 above.
7. Overload: the real server fed 30 frames/s for 10 s, without waiting for answers. Each ``object_detected`` is
   matched to the frame it answers by its coordinates (learnt from the 5 frames/s run of the same server);
   the counters come from ``/healthz``.

The tables also replace this benchmark's block of the results page (`benchmarks.results_page`; not with
``--quick`` unless ``--results`` names the page). Linux only (memory from ``/proc/self/statm``). The machine
may be shared: the load average is reported at the start and at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import results_page
from benchmarks.machine import format_loads, machine
from benchmarks.servers import ServerProcess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "weights" / "model_weights"
DEFAULT_JSON = ROOT / "benchmarks" / "results.json"
FLIGHT_FRAMES = 100
FLIGHT_SEED = 1
SIM_RATE = 5.0
OVERLOAD_RATE = 30.0
OVERLOAD_S = 10.0
ANSWER_TIMEOUT_S = 5.0
WARMUP_FRAMES = 5
ROUND_TRIPS = 50
MATCH_TOLERANCE_M = 0.05
SETTLE_S = 1.0
# The frames loop over a flight's frames, so the target jumps at each wrap: frame by frame, every frame is answered
# and the overload's answers match their frames by position. The Kalman tracker's cost is in the decide stage.
FOLLOWER_FLAGS = ("--tracker", "none")
SETTLED = ("frames_processed", "frames_dropped", "frames_rejected", "frames_failed")  # what becomes of a frame


# ---------------------------------------------------------------------------------------------- memory


def rss_mb() -> float:
    """This process's resident memory, in MB (10^6 bytes)."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def percentiles_ms(seconds: Sequence[float], *qs: float) -> list[float]:
    """Percentiles of durations in seconds, in milliseconds (NaN each when there are none)."""
    if not len(seconds):
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(np.asarray(seconds) * 1000.0, qs)]


# ---------------------------------------------------------------------------------------------- frames


def benchmark_frames(directory: Path, segmenter: Any, settings: Any) -> tuple[Any, list[dict]]:
    """(the synthetic flight, the payloads of its frames where the target is visible and the model locates it)."""
    from follower.pipeline import process_frame
    from sim_bridge.flight import read_flight
    from sim_bridge.synth import synthesize

    path = directory / "benchmark.flight.jsonl.gz"
    synthesize(path, FLIGHT_FRAMES, FLIGHT_SEED)
    flight = read_flight(path)
    visible = [frame.data for frame in flight.frames if frame.truth.visible]
    located = [data for data in visible if process_frame(data, segmenter, settings).detection is not None]
    if not located:
        raise SystemExit("error: the model locates the target in none of the synthetic frames")
    return flight, located


def located_by(frames: list[dict], segmenter: Any, settings: Any) -> list[dict]:
    """The frames in which ``segmenter`` locates the target too."""
    from follower.pipeline import process_frame

    both = [data for data in frames if process_frame(data, segmenter, settings).detection is not None]
    if not both:
        raise SystemExit("error: the --compare model locates the target in none of the benchmark frames")
    return both


# ---------------------------------------------------------------------------------------------- in process


STAGES = {
    "decode_jpeg": "decode JPEG (base64 + JPEG → RGB)",
    "decode_depth": "decode depth (base64 + PNG → metres)",
    "resize": "resize and scale to the input size",
    "inference": "inference (compiled call)",
    "blob": "blob and centroid (mask, largest blob)",
    "geometry": "depth and geometry (median depth, back-projection)",
    "decide": "decide (tracker, events)",
    "pipeline": "whole `process_frame`",
}
# `process_frame`'s own timings, as `stage_breakdown` keeps them beside the `STAGES`.
PIPELINE_TIMINGS = ("decode", "segment", "locate")
# The served frame's way, in order: the server's ``follower_stage_seconds`` label → (what it is, the in-process
# stage that does the same work, or None where only the server has it).
WATERFALL = {
    "queue": ("waiting in the slot (arrival on the hub → handed to the worker)", None),
    "to_worker": ("hop to the worker thread", None),
    "decode": ("decode (base64, JPEG, PNG, poses)", "decode"),
    "inference": ("inference (resize and network)", "segment"),
    "locate": ("locate (blob, depth, geometry)", "locate"),
    "to_hub": ("hop back to the hub", None),
    "decide": ("decide (in process: the Kalman tracker; served: `--tracker none` and recording)", "decide"),
    "emit": ("emit (the events queued for the socket's writer)", None),
}


def stage_breakdown(frames: list[dict], segmenter: Any, settings: Any, count: int) -> dict[str, dict[str, float]]:
    """``{stage: {"p50", "mean"}}`` milliseconds over ``count`` frames: the `STAGES`, and `process_frame`'s own
    timings (``decode``, ``segment``, ``locate``).

    Each frame goes through `process_frame`; then the product's functions for the finer stages are timed on the
    same frame. Inference is the segment call minus the resize, depth and geometry the locate call minus the blob.
    """
    from follower.pipeline import largest_blob, process_frame, target_mask, target_probabilities
    from follower.tracking import KalmanTracker
    from models.imaging import prepare_input
    from sim_bridge import protocol

    tracker = KalmanTracker()
    stages: dict[str, list[float]] = {name: [] for name in [*STAGES, *PIPELINE_TIMINGS]}
    for i in range(count):
        message = frames[i % len(frames)]
        start = time.perf_counter()
        result = process_frame(message, segmenter, settings)
        total = time.perf_counter() - start
        started = time.perf_counter()
        protocol.decode_rgb(protocol.decode_base64(message["rgb_image"], "rgb_image"))
        jpeg = time.perf_counter() - started
        started = time.perf_counter()
        protocol.decode_depth_png(protocol.decode_base64(message["depth_image"], "depth_image"))
        png = time.perf_counter() - started
        started = time.perf_counter()
        prepare_input(result.frame.rgb, segmenter.input_size)
        resize = time.perf_counter() - started
        started = time.perf_counter()
        largest_blob(target_mask(target_probabilities(result.segmentation), settings.threshold))
        blob = time.perf_counter() - started
        started = time.perf_counter()
        tracker.update(result.detection, result.frame.timestamp)
        decide = time.perf_counter() - started
        timings = result.timings
        fine = (jpeg, png, resize, timings["segment"] - resize, blob, timings["locate"] - blob, decide, total)
        for name, seconds in zip([*STAGES, *PIPELINE_TIMINGS], [*fine, *(timings[k] for k in PIPELINE_TIMINGS)]):
            stages[name].append(seconds)
    return {
        name: {"p50": percentiles_ms(values, 50)[0], "mean": float(np.mean(values)) * 1000.0}
        for name, values in stages.items()
    }


def paced_pipeline(frames: list[dict], segmenter: Any, settings: Any, count: int, rate: float = SIM_RATE) -> dict:
    """`process_frame` in process at ``rate`` frames/s, as the server sees frames: ``{"p50", "mean"}`` ms over
    ``count`` frames. Against the back-to-back figure, what idling between frames costs (cold caches, threads and
    cores that wake up) without the server."""
    from follower.pipeline import process_frame

    seconds = []
    for i in range(count):
        time.sleep(1.0 / rate)
        started = time.perf_counter()
        process_frame(frames[i % len(frames)], segmenter, settings)
        seconds.append(time.perf_counter() - started)
    return {"p50": percentiles_ms(seconds, 50)[0], "mean": float(np.mean(seconds)) * 1000.0}


def memory_run(frames: list[dict], segmenter: Any, settings: Any, count: int) -> dict[str, float]:
    """Resident memory (MB) at the start and end of ``count`` frames through the pipeline, and frames/s."""
    from follower.pipeline import process_frame
    from follower.tracking import KalmanTracker

    tracker = KalmanTracker()
    start_mb, peak_mb = rss_mb(), 0.0
    started = time.perf_counter()
    for i in range(count):
        result = process_frame(frames[i % len(frames)], segmenter, settings)
        tracker.update(result.detection, result.frame.timestamp)
        if i % 500 == 0:
            peak_mb = max(peak_mb, rss_mb())
    elapsed = time.perf_counter() - started
    end_mb = rss_mb()
    return {
        "frames": count,
        "start_mb": start_mb,
        "end_mb": end_mb,
        "peak_mb": max(peak_mb, end_mb),
        "growth_mb": end_mb - start_mb,
        "frames_per_s": count / elapsed,
    }


# ---------------------------------------------------------------------------------------------- servers


@dataclass
class Answers:
    """The ``object_detected`` events a client receives: (arrival in monotonic seconds, coordinates)."""

    detections: list[tuple[float, list[float]]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __call__(self, name: str, data: Any, arrival: float) -> None:
        if name == "object_detected":
            self.detections.append((arrival, data["coords"]))
            self.arrived.set()


def paced(urls: Sequence[str], frames: list[dict], count: int, rate: float = SIM_RATE) -> list[dict[str, Any]]:
    """Send ``count`` frames at ``rate`` frames/s to each server, each after the previous one's answer (after a
    few unmeasured). With several servers the sends take turns, evenly spaced, so that each server sees the
    simulator's rate and all of them the same moments of load from elsewhere.

    Returns, per server, ``latencies_s``, ``unanswered`` (frames without an answer within `ANSWER_TIMEOUT_S`) and
    ``coords`` (the coordinates answered for each benchmark frame, by index).
    """
    from sim_bridge.client import SimulatorClient
    from sim_bridge.protocol import SENSOR_FRAME

    answers = [Answers() for _ in urls]
    runs: list[dict[str, Any]] = [{"latencies_s": [], "coords": {}, "unanswered": 0} for _ in urls]
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(SimulatorClient(url, on_event=got)) for url, got in zip(urls, answers)]
        next_send = time.monotonic()
        for i in range(-WARMUP_FRAMES, count):
            index = i % len(frames)
            for client, got, run in zip(clients, answers, runs):
                time.sleep(max(0.0, next_send - time.monotonic()))
                got.arrived.clear()
                seen = len(got.detections)
                sent = time.monotonic()
                client.emit(SENSOR_FRAME, frames[index])
                if got.arrived.wait(ANSWER_TIMEOUT_S):
                    arrival, run["coords"][index] = got.detections[seen]
                    if i >= 0:
                        run["latencies_s"].append(arrival - sent)
                elif i >= 0:
                    run["unanswered"] += 1
                next_send = max(next_send + 1.0 / (rate * len(urls)), time.monotonic())
    return runs


def simulators(url: str, frames: list[dict], count: int, clients: int, rate: float = SIM_RATE) -> list[dict[str, Any]]:
    """``clients`` simulators on the server at ``url`` at once, each sending ``count`` frames at ``rate`` frames/s
    without waiting (after a few unmeasured), their first frames spread over one interval. A frame is answered
    when its ``object_detected`` arrives before the client's next frame is sent.

    Returns, per client, ``latencies_s`` (of the answered frames) and ``sent``.
    """
    from sim_bridge.client import SimulatorClient
    from sim_bridge.protocol import SENSOR_FRAME

    answers = [Answers() for _ in range(clients)]
    runs: list[dict[str, Any]] = [{"latencies_s": [], "sent": count} for _ in range(clients)]

    def fly(client: SimulatorClient, got: Answers, run: dict[str, Any], start: float) -> None:
        for i in range(-WARMUP_FRAMES, count):
            due = start + (i + WARMUP_FRAMES) / rate
            time.sleep(max(0.0, due - time.monotonic()))
            seen = len(got.detections)
            sent = time.monotonic()
            client.emit(SENSOR_FRAME, frames[i % len(frames)])
            time.sleep(max(0.0, due + 1.0 / rate - time.monotonic()))
            if i >= 0 and len(got.detections) > seen:
                run["latencies_s"].append(got.detections[seen][0] - sent)

    with contextlib.ExitStack() as stack:
        connected = [stack.enter_context(SimulatorClient(url, on_event=got)) for got in answers]
        start = time.monotonic() + 0.5
        threads = [
            threading.Thread(target=fly, args=(client, got, run, start + k / (rate * clients)))
            for k, (client, got, run) in enumerate(zip(connected, answers, runs))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return runs


def round_trips(url: str, count: int, rate: float = SIM_RATE) -> dict[str, float]:
    """The bare socket's round trip to the server, an Engine.IO PING answered by its PONG without any frame:
    ``{"back_to_back", "paced"}`` p50 ms over ``count`` each, the second at ``rate`` per second. Against each other,
    what an idle machine's waking up costs the socket alone."""
    from sim_bridge.client import SimulatorClient

    with SimulatorClient(url) as client:
        back_to_back = [client.round_trip(ANSWER_TIMEOUT_S) for _ in range(count)]
        paced_s = []
        for _ in range(count):
            time.sleep(1.0 / rate)
            paced_s.append(client.round_trip(ANSWER_TIMEOUT_S))
    return {"back_to_back": percentiles_ms(back_to_back, 50)[0], "paced": percentiles_ms(paced_s, 50)[0]}


def overload(server: ServerProcess, frames: list[dict], coords: dict[int, list[float]], seconds: float) -> dict:
    """Feed ``server`` 30 frames/s for ``seconds`` without waiting; latencies and counters (see the module doc)."""
    from sim_bridge.client import SimulatorClient
    from sim_bridge.protocol import SENSOR_FRAME

    before = server.health()
    answers = Answers()
    sends: list[tuple[float, int]] = []
    count = round(OVERLOAD_RATE * seconds)
    with SimulatorClient(server.url, on_event=answers) as client:
        start = time.monotonic()
        for i in range(count):
            time.sleep(max(0.0, start + i / OVERLOAD_RATE - time.monotonic()))
            sends.append((time.monotonic(), i % len(frames)))
            client.emit(SENSOR_FRAME, frames[i % len(frames)])
        sent_all = time.monotonic()
        sending_s = sent_all - start
        deadline = sent_all + ANSWER_TIMEOUT_S
        while True:  # until every frame is accounted for (drained), then quiet for SETTLE_S
            health = server.health()
            done = sum(health[key] for key in SETTLED)
            if health["frames_received"] - before["frames_received"] == count and done == health["frames_received"]:
                drain_s = time.monotonic() - sent_all
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"error: {count} frames sent, not all accounted for: {health}")
            time.sleep(0.05)
        time.sleep(SETTLE_S)
    counts = {key: health[key] - before[key] for key in ("frames_received", *SETTLED)}
    known = np.array([coords[index] for index in sorted(coords)])
    indices = sorted(coords)
    latencies, late, unmatched = [], [], 0
    for arrival, answered in answers.detections:
        distances = np.linalg.norm(known - np.asarray(answered), axis=1)
        if distances.min() > MATCH_TOLERANCE_M:
            unmatched += 1
            continue
        index = indices[int(np.argmin(distances))]
        sent = max(t for t, sent_index in sends if sent_index == index and t <= arrival)
        latencies.append(arrival - sent)
        if sent >= start + 2 * sending_s / 3:
            late.append(arrival - sent)
    return {
        "sent": count,
        "send_rate": count / sending_s,
        "drain_s": drain_s,
        "latencies_s": latencies,
        "last_third_latencies_s": late,
        "unmatched": unmatched,
        **counts,
    }


# ---------------------------------------------------------------------------------------------- report


def compared_server(model: Path | None, directory: Path) -> contextlib.AbstractContextManager:
    """The follower serving the ``--compare`` model beside ours (None without one)."""
    if model is None:
        return contextlib.nullcontext()
    print(f"... taking turns with the follower serving {model}", file=sys.stderr)
    return ServerProcess(model, *FOLLOWER_FLAGS, log_path=directory / "compare.log").wait_listening()


def served_segmenter(model: Path) -> tuple[Any, dict[str, Any]]:
    """``model`` loaded as the follower serves it, with the runtime and inference threads that the ``FOLLOWER_*``
    variables (or the defaults) give the servers this benchmark starts: (the segmenter, what runs it)."""
    from follower import config
    from follower.segmenter import load_served

    served = config.resolve(config.from_environ(os.environ))
    segmenter, threads = load_served(model, served.runtime, served.inference_threads)
    return segmenter, {"runtime": segmenter.runtime, "backend": segmenter.backend, "inference_threads": threads}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, as a JSON-ready dict."""
    from follower.pipeline import Settings
    from follower.replay import replay

    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "machine": machine()}
    settings = Settings()
    segmenter, results["runtime"] = served_segmenter(args.model)
    with tempfile.TemporaryDirectory(prefix="followme-bench-") as directory:
        directory = Path(directory)
        flight, frames = benchmark_frames(directory, segmenter, settings)
        if args.compare:
            frames = located_by(frames, served_segmenter(args.compare)[0], settings)
        results["frames"] = {"flight": FLIGHT_FRAMES, "benchmark": len(frames), "stages": args.frames}
        print(f"{len(frames)} benchmark frames; stages ...", file=sys.stderr)
        results["stages_ms"] = stage_breakdown(frames, segmenter, settings, args.frames)
        results["paced_pipeline_ms"] = paced_pipeline(frames, segmenter, settings, args.frames)
        results["offline_frames_per_s"] = replay(flight, segmenter, settings)["frames_per_s"]
        print(f"memory over {args.memory_frames} frames ...", file=sys.stderr)
        results["memory"] = memory_run(frames, segmenter, settings, args.memory_frames)
        print("the follower over the socket ...", file=sys.stderr)
        with ServerProcess(args.model, *FOLLOWER_FLAGS, log_path=directory / "follower.log").wait_listening() as server:
            with compared_server(args.compare, directory) as other:
                before = server.server_seconds()
                ours, *compared = paced([server.url, *([other.url] if other else [])], frames, args.frames)
                results["server_mean_ms"] = server.mean_ms_since(before)
            if args.clients > 1:
                print(f"{args.clients} simulators at once ...", file=sys.stderr)
                results["clients"] = simulators(server.url, frames, args.frames, args.clients)
            results["round_trip_ms"] = round_trips(server.url, ROUND_TRIPS)
            print("overload ...", file=sys.stderr)
            results["overload"] = overload(server, frames, ours["coords"], args.overload_seconds)
        print("the naive server over the socket ...", file=sys.stderr)
        naive_server = ServerProcess(args.model, module="benchmarks.naive_server", log_path=directory / "naive.log")
        with naive_server.wait_listening() as server:
            (naive,) = paced([server.url], frames, args.frames)
        runs = {"ours": ours, "naive": naive, **dict(zip(["compare"], compared))}
    results["models"] = {"ours": str(args.model), "compare": str(args.compare) if args.compare else None}
    results["end_to_end"] = {
        name: {"latencies_s": measured["latencies_s"], "unanswered": measured["unanswered"]}
        for name, measured in runs.items()
    }
    results["e2e_mean_ms"] = float(np.mean(ours["latencies_s"])) * 1000.0
    results["load_average_end"] = os.getloadavg()
    return results


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    info, load_start, load_end = results["machine"], results["load_average_start"], results["load_average_end"]
    e2e = {name: run["latencies_s"] for name, run in results["end_to_end"].items()}
    ours, naive = (percentiles_ms(e2e[name], 50, 90, 99) for name in ("ours", "naive"))
    ratio = [n / o for n, o in zip(naive, ours)]
    memory, over, stages, paced = (
        results["memory"],
        results["overload"],
        results["stages_ms"],
        results["paced_pipeline_ms"],
    )
    server = results["server_mean_ms"]
    over_p50, over_p95 = percentiles_ms(over["latencies_s"], 50, 95)
    late_p95 = percentiles_ms(over["last_third_latencies_s"], 95)[0]
    accounted = sum(over[key] for key in SETTLED)
    ours_p95 = percentiles_ms(e2e["ours"], 95)[0]
    lines = [
        f"Machine: {info['cpus']} CPU cores, {info['cpu_model']}; Python {info['python']}, "
        f"Keras on {info['backend']}; the network on {_engine(results['runtime'])}, in process and served. "
        "Load average (1/5/15 min): "
        f"{format_loads(load_start)} at the start, {format_loads(load_end)} at the end.",
        "",
        f"End to end over the socket, {len(e2e['ours'])} frames at {SIM_RATE:g} frames/s, sending `sensor_frame` "
        f"to receiving `object_detected` ({results['frames']['benchmark']} synthetic frames in a loop):",
        "",
        "| server | p50 ms | p90 ms | p99 ms | unanswered |",
        "| --- | --- | --- | --- | --- |",
        f"| follower (`python -m follower.serve`) | {ours[0]:.1f} | {ours[1]:.1f} | {ours[2]:.1f} | "
        f"{results['end_to_end']['ours']['unanswered']} |",
        f"| naive (`model.predict()` on the hub) | {naive[0]:.1f} | {naive[1]:.1f} | {naive[2]:.1f} | "
        f"{results['end_to_end']['naive']['unanswered']} |",
        f"| **ratio naive / follower** | **{ratio[0]:.1f}x** | **{ratio[1]:.1f}x** | {ratio[2]:.1f}x | |",
        *compare_rows(results, ours),
        *client_rows(results, ours),
        "",
        f"Stages in process, ms over {results['frames']['stages']} frames (the share is of the mean pipeline):",
        "",
        "| stage | p50 | mean | share |",
        "| --- | --- | --- | --- |",
        *(
            f"| {label} | {stages[name]['p50']:.2f} | {stages[name]['mean']:.2f} | "
            f"{100 * stages[name]['mean'] / stages['pipeline']['mean']:.0f} % |"
            for name, label in STAGES.items()
        ),
        "",
        "Where a served frame's time goes, against the same work in process (means in ms; served: over the "
        "5 frames/s run, from the server's `/metrics`; the socket and the client are the end-to-end mean minus "
        "the server's stages):",
        "",
        *waterfall_rows(stages, server, results["e2e_mean_ms"], results["round_trip_ms"]),
        "",
        f"The whole `process_frame` in process at {SIM_RATE:g} frames/s, as the server gets frames (idle between "
        f"them): p50 {paced['p50']:.2f} ms, mean {paced['mean']:.2f} ms, against {stages['pipeline']['p50']:.2f} "
        f"and {stages['pipeline']['mean']:.2f} back to back.",
        "",
        "| throughput and memory | value |",
        "| --- | --- |",
        f"| offline frames/s, whole synthetic flight (`follower.replay`) | {results['offline_frames_per_s']:.1f} |",
        f"| offline frames/s over the memory run | {memory['frames_per_s']:.1f} |",
        f"| resident memory over {memory['frames']:,} frames: start → end (peak) | {memory['start_mb']:.0f} → "
        f"{memory['end_mb']:.0f} MB ({memory['peak_mb']:.0f}) |",
        f"| **memory growth** | **{memory['growth_mb']:+.1f} MB** |",
        "",
        f"Overload: {over['sent']} frames at {over['send_rate']:.1f} frames/s into the follower, without waiting:",
        "",
        "| received | processed | dropped | rejected or failed | drained after the last frame | latency p50 | p95 | "
        "p95, last third | p95 / p95 at 5 frames/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {over['frames_received']} | {over['frames_processed']} | {over['frames_dropped']} | "
        f"{over['frames_rejected'] + over['frames_failed']} | {1000 * over['drain_s']:.0f} ms | "
        f"{over_p50:.1f} ms | {over_p95:.1f} ms | {late_p95:.1f} ms | "
        f"{over_p95 / ours_p95:.2f} |",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        f"| end-to-end p50 ≤ 30 ms | {ours[0]:.1f} ms | {_yes(ours[0] <= 30)} |",
        f"| ≥ 5x faster than naive (p50) | {ratio[0]:.1f}x | {_yes(ratio[0] >= 5)} |",
        f"| served ≈ in process: end-to-end p50 ≤ `process_frame` p50 + 2 ms | {ours[0]:.1f} ms against "
        f"{stages['pipeline']['p50']:.1f} ms back to back ({paced['p50']:.1f} ms at {SIM_RATE:g} frames/s) | "
        f"{_yes(ours[0] <= stages['pipeline']['p50'] + 2)} |",
        f"| memory growth < 50 MB over 10,000 frames | {memory['growth_mb']:+.1f} MB over {memory['frames']:,} | "
        f"{_yes(memory['growth_mb'] < 50 and memory['frames'] >= 10_000)} |",
        f"| overload: nothing queues (received = processed + dropped + rejected + failed; drained at once) | "
        f"{over['frames_received']} = {accounted}; {1000 * over['drain_s']:.0f} ms | "
        f"{_yes(accounted == over['frames_received'] and over['drain_s'] < 1.0)} |",
    ]
    return "\n".join(lines)


def waterfall_rows(
    stages: dict[str, dict[str, float]], server: dict[str, float], e2e_mean_ms: float, round_trip: dict[str, float]
) -> list[str]:
    """The served path's stages beside the in-process ones (means in ms), the socket's rest with the bare socket's
    round trip (`round_trips`), and the totals."""
    rows = ["| stage | in process | served | served − in process |", "| --- | --- | --- | --- |"]
    for label, (what, local) in WATERFALL.items():
        if local is None:
            rows.append(f"| {what} | | {server[label]:.2f} | {server[label]:+.2f} |")
        else:
            mine = stages[local]["mean"]
            rows.append(f"| {what} | {mine:.2f} | {server[label]:.2f} | {server[label] - mine:+.2f} |")
    socket_ms = e2e_mean_ms - sum(server[label] for label in WATERFALL)
    whole = stages["pipeline"]["mean"] + stages["decide"]["mean"]
    return [
        *rows,
        f"| socket and client (both ways) | | {socket_ms:.2f} | {socket_ms:+.2f} |",
        f"| of which the bare socket, PING → PONG without a frame, p50 (back to back: "
        f"{round_trip['back_to_back']:.2f}) | | {round_trip['paced']:.2f} | |",
        f"| **whole** (in process: `process_frame` and decide; served: end to end) | {whole:.2f} | "
        f"{e2e_mean_ms:.2f} | **{e2e_mean_ms - whole:+.2f}** |",
    ]


def compare_rows(results: dict[str, Any], ours: list[float]) -> list[str]:
    """The ``--compare`` model's end-to-end row and the cost ratio, or nothing without it."""
    if "compare" not in results["end_to_end"]:
        return []
    run = results["end_to_end"]["compare"]
    theirs = percentiles_ms(run["latencies_s"], 50, 90, 99)
    cost = [o / t for o, t in zip(ours, theirs)]
    return [
        f"| follower serving `{results['models']['compare']}` | {theirs[0]:.1f} | {theirs[1]:.1f} | "
        f"{theirs[2]:.1f} | {run['unanswered']} |",
        f"| **cost: follower / follower serving the compared model** | **{cost[0]:.2f}x** | {cost[1]:.2f}x | "
        f"{cost[2]:.2f}x | |",
    ]


def client_rows(results: dict[str, Any], ours: list[float]) -> list[str]:
    """With ``--clients N``: each simulator's answered share and latency, against the single client's p50, and
    the target (every one answered on at least 90 % of its frames); nothing without it."""
    if "clients" not in results:
        return []
    runs = results["clients"]
    rows = [
        "",
        f"{len(runs)} simulators at once on the same follower, each at {SIM_RATE:g} frames/s without waiting "
        "(answered: before its next frame):",
        "",
        "| simulator | answered | p50 ms | p90 ms | p50 / one client's p50 |",
        "| --- | --- | --- | --- | --- |",
    ]
    shares = []
    for number, run in enumerate(runs, 1):
        p50, p90 = percentiles_ms(run["latencies_s"], 50, 90) if run["latencies_s"] else (float("nan"),) * 2
        shares.append(len(run["latencies_s"]) / run["sent"])
        rows.append(f"| {number} | {shares[-1]:.0%} | {p50:.1f} | {p90:.1f} | {p50 / ours[0]:.2f}x |")
    rows.append(f"| one client alone (above) | | {ours[0]:.1f} | {ours[1]:.1f} | 1.00x |")
    lowest = min(shares)
    return [
        *rows,
        "",
        f"Every simulator answered on at least 90 % of its frames: {_yes(lowest >= 0.9)} ({lowest:.0%}).",
    ]
    return rows


def _engine(runtime: dict[str, Any]) -> str:
    from follower.segmenter import describe_threads

    return f"{runtime['runtime']}, inference threads: {describe_threads(runtime['inference_threads'])}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model (default: the shipped one)")
    parser.add_argument("--compare", type=Path, help="also serve this model, same frames, same run (cost ratio)")
    parser.add_argument("--clients", type=int, default=1, help="also N simulators at once on one follower (say 4)")
    parser.add_argument("--frames", type=int, default=200, help="frames per end-to-end run (default: 200)")
    parser.add_argument("--memory-frames", type=int, default=10_000, help="frames of the memory run")
    parser.add_argument("--overload-seconds", type=float, default=OVERLOAD_S, help="length of the overload")
    parser.add_argument("--quick", action="store_true", help="50 frames, 1,000 for memory, 3 s of overload")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default: {DEFAULT_JSON})")
    results_page.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.memory_frames, args.overload_seconds = 50, 1_000, 3.0
    results = run(args)
    results["command"] = " ".join(["python -m benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
    table = markdown(results)
    print(table)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}", file=sys.stderr)
    results_page.publish(args, "benchmarks.run", results, table)


if __name__ == "__main__":
    main()
