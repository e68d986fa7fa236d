"""CPU milliseconds per frame of several models through the server's compiled inference call.

    python -m benchmarks.model_latency MODEL [MODEL ...] [--rounds 5] [--frames 50]

Each model segments the same 256x256 frame (resize to its input size included). Models are measured in
interleaved rounds and each one's best round median is kept, so load from other processes hurts all models alike;
the ratio column is against the first model, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def call_seconds(segment: Callable, frames: Sequence[np.ndarray], calls: int, pause: float = 0.0) -> list[float]:
    """Wall seconds of ``calls`` calls of ``segment`` over ``frames`` in turn, each after ``pause`` s of sleep."""
    seconds = []
    for i in range(calls):
        time.sleep(pause)
        started = time.perf_counter()
        segment(frames[i % len(frames)])
        seconds.append(time.perf_counter() - started)
    return seconds


def median_ms(segment: Callable, frames: Sequence[np.ndarray], calls: int, pause: float = 0.0) -> float:
    """Median of `call_seconds`, in milliseconds."""
    return float(np.median(call_seconds(segment, frames, calls, pause))) * 1000


def main() -> None:
    from benchmarks.machine import machine
    from follower.segmenter import Segmenter

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args()
    frame = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    segmenters = {path: Segmenter.load(path) for path in args.models}
    best = {path: float("inf") for path in args.models}
    for _ in range(args.rounds):
        for path, segment in segmenters.items():
            best[path] = min(best[path], median_ms(segment, [frame], args.frames))
    about = machine()
    print(f"machine: {about['cpus']} CPU cores, {about['cpu_model']}; Keras on {about['backend']}")
    baseline = best[args.models[0]]
    print("| model | parameters | input | ms/frame | ratio to first |")
    print("| --- | --- | --- | --- | --- |")
    for path, segment in segmenters.items():
        print(
            f"| {path} | {segment.model.count_params():,} | {segment.input_size} | {best[path]:.1f} | "
            f"{best[path] / baseline:.2f} |"
        )


if __name__ == "__main__":
    main()
