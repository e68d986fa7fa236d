"""The follower on the active Keras backend (``KERAS_BACKEND``) and its device: the network alone, then end to end.

    KERAS_BACKEND=jax python -m benchmarks.backends [--model M] [--frames 200] [--calls 200] [--out DIR]

1. The network: the segmenter's compiled call (`follower.segmenter`, as the server makes it, with its default
   threads) on a frame already at the input size, ``--calls`` calls back to back after the warm-up, in this process.
2. End to end: the real server (``python -m follower.serve MODEL``, default settings) in a subprocess under the same
   backend, on the same device, and a synthetic flight (`sim_bridge.synth`, ``--frames`` frames recorded at 5
   frames/s, seed 1) played against it over the loopback by `sim_bridge.replay`: at the flight's own pace, then in
   lockstep (each frame sent once the previous one is settled: back to back). Latency is from sending
   ``sensor_frame`` to the first event it gets (`sim_bridge.summary`: the frames that get one); the server's own
   inference time (resize included) comes from its ``/metrics``; the events and transitions are kept, to compare
   backends on the same flight.

Prints a Markdown table; ``--out DIR`` also gets ``BACKEND.json`` and the server's log, ``BACKEND-server.log``.
No TensorFlow needed unless it is the backend, and nothing outside the repository (the flight is rendered here).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import format_loads, machine
from benchmarks.model_latency import call_seconds
from benchmarks.run import DEFAULT_MODEL, FLIGHT_SEED, percentiles_ms
from benchmarks.servers import ServerProcess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# This process and the server's share the GPU: neither may take most of its memory up front, as JAX does by default.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def network_ms(segmenter: Any, calls: int) -> dict[str, float]:
    """p50 and p90 milliseconds of ``calls`` back-to-back calls of the compiled network on one prepared frame."""
    frame = np.random.default_rng(0).integers(0, 256, (segmenter.input_size, segmenter.input_size, 3), np.uint8)
    p50, p90 = percentiles_ms(call_seconds(segmenter.class_probabilities, [frame], calls), 50, 90)
    return {"p50": p50, "p90": p90}


def served(model: Path, flight_path: Path, log_path: Path) -> dict[str, Any]:
    """The flight against the real server, at its pace and in lockstep: each run's replay summary (without the
    per-frame lists) and the server's mean stage times over it (``server_mean_ms``)."""
    from sim_bridge.flight import read_flight
    from sim_bridge.replay import replay

    flight = read_flight(flight_path)
    runs = {}
    with ServerProcess(model, log_path=log_path).wait_listening() as server:
        for name, pace in (("paced", {"speed": 1.0}), ("lockstep", {"lockstep": True})):
            before = server.server_seconds()
            summary = replay(flight, server.url, **pace)
            summary.pop("visible_not_reported", None)
            runs[name] = {**summary, "server_mean_ms": server.mean_ms_since(before)}
    return runs


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, as a JSON-ready dict."""
    from follower.segmenter import load_served
    from sim_bridge.synth import synthesize

    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "machine": machine()}
    started = time.perf_counter()
    segmenter, _ = load_served(args.model)  # as the server runs it
    results["startup_s"] = time.perf_counter() - started  # load, compile, warm up
    results.update(
        backend=segmenter.backend,
        runtime=segmenter.runtime,
        device=segmenter.device,
        network_ms=network_ms(segmenter, args.calls),
    )
    print(
        f"{segmenter.backend} ({segmenter.runtime}) on {segmenter.device}: "
        f"network {results['network_ms']['p50']:.2f} ms",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="followme-backends-") as directory:
        flight_path = Path(directory) / "flight.jsonl.gz"
        synthesize(flight_path, args.frames, FLIGHT_SEED)
        log_path = (args.out or Path(directory)) / f"{segmenter.backend}-server.log"
        results["served"] = served(args.model, flight_path, log_path)
    results["frames"] = args.frames
    results["load_average_end"] = os.getloadavg()
    return results


def markdown(results: dict[str, Any]) -> str:
    """The results as one line about the machine and a Markdown table."""
    info, served_runs, network = results["machine"], results["served"], results["network_ms"]
    lines = [
        f"Machine: {info['cpus']} CPU cores, {info['cpu_model']}; Python {info['python']}; Keras on {info['backend']}, "
        f"{results['runtime']} on {results['device']}. "
        f"Load average (1/5/15 min): {format_loads(results['load_average_start'])} at the start, "
        f"{format_loads(results['load_average_end'])} at the end. Start-up (load, compile, warm up): "
        f"{results['startup_s']:.1f} s. Network alone, back to back: p50 {network['p50']:.2f} ms, "
        f"p90 {network['p90']:.2f} ms.",
        "",
        f"| {results['frames']} frames | end to end p50 ms | p90 ms | inference in the server, mean ms | "
        "frames answered | events | transitions |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, label in (("paced", "5 frames/s"), ("lockstep", "back to back")):
        run = served_runs[name]
        events = ", ".join(f"{event} {count}" for event, count in run["events"].items())
        transitions = ", ".join(f"{t['event']} {t['frame']}" for t in run["transitions"])
        lines.append(
            f"| {label} | {run['latency_ms']['p50']:.1f} | {run['latency_ms']['p90']:.1f} | "
            f"{run['server_mean_ms']['inference']:.2f} | {run['frames_answered']} | {events} | {transitions} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, print the table, write the JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model (default: the shipped one)")
    parser.add_argument("--frames", type=int, default=200, help="frames of the synthetic flight (default: 200, 40 s)")
    parser.add_argument("--calls", type=int, default=200, help="back-to-back network calls (default: 200)")
    parser.add_argument("--out", type=Path, help="folder for BACKEND.json and BACKEND-server.log")
    args = parser.parse_args(argv)
    results = run(args)
    print(markdown(results))
    if args.out:
        path = args.out / f"{results['backend']}.json"
        path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
