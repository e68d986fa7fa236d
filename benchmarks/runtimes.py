"""The network on other runtimes than TensorFlow's compiled call: milliseconds per frame and parity, in one process.

    python -m benchmarks.runtimes [MODEL ...] [--rounds 5] [--calls 50] [--paused-calls 15] [--pause 0.2]
                                  [--frames 20] [--threads 1]

Each model (default: the shipped one and the 2017 one from ../shared) runs on
- ``tensorflow``: the server's `follower.segmenter.Segmenter`, its ``tf.function``, as the server runs it;
- ``openvino``: ``Segmenter(runtime="openvino")``, converted in process (latency hint, one stream, float32);
- ``onnxruntime``: the model exported by ``model.export(format="onnx")`` (tf2onnx) into a temporary folder, on ONNX
  Runtime's CPU provider; skipped, with the reason, without the ``onnxruntime`` and ``tf2onnx`` packages.

Each with ``--threads`` threads per op (TensorFlow's intra-op threads, OpenVINO's inference threads, ONNX Runtime's
intra-op threads), on the same 256x256 RGB frames: the first ``--frames`` validation images of ../shared, else
random ones; the resize to the input size (`models.imaging.prepare_input`) is inside the timed call. Parity is the
largest absolute difference of the class probabilities from TensorFlow's over those frames. Timing: interleaved
rounds, each runtime in turn, its calls back to back, then each call after ``--pause`` s of sleep (the simulator's
5 frames/s, as the server runs); each runtime's best round median is kept, and its ratio is to TensorFlow's in the
same run. Start-up is the conversion, compilation and first call. The load average is printed at the start and end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.machine import format_loads, machine
from benchmarks.model_latency import median_ms
from benchmarks.run import DEFAULT_MODEL, ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LEGACY_MODEL = ROOT.parent / "shared" / "legacy_weights" / "udacity-2017-fcn" / "model_weights"
VALIDATION_IMAGES = ROOT.parent / "shared" / "followme_data" / "validation" / "images"
FRAME_SIZE = 256

# An RGB uint8 frame → its class probabilities (S, S, C), resize included.
Segment = Callable[[np.ndarray], np.ndarray]


@dataclass
class Runtime:
    """One way to run a model: its call, its start-up time, and its best round medians."""

    name: str
    segment: Segment
    startup_s: float
    max_difference: float = float("nan")
    best_ms: dict[str, float] = field(default_factory=lambda: {"back to back": np.inf, "paused": np.inf})


def load_frames(count: int) -> list[np.ndarray]:
    """The first ``count`` validation images, or random frames when ../shared is absent (said on standard output)."""
    from PIL import Image

    paths = sorted(VALIDATION_IMAGES.glob("*.jpeg"))[:count]
    if not paths:
        print(f"no images in {VALIDATION_IMAGES}: random frames")
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8) for _ in range(count)]
    return [np.asarray(Image.open(path).convert("RGB")) for path in paths]


def onnxruntime_segment(model, input_size: int, threads: int) -> Segment:
    """The model exported to ONNX (tf2onnx, through Keras) and run by ONNX Runtime's CPU provider."""
    import keras
    import onnxruntime

    from models.imaging import prepare_input

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    signature = [keras.InputSpec(shape=(1, input_size, input_size, 3), dtype="float32")]
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "model.onnx")
        model.export(path, format="onnx", input_signature=signature, verbose=False)
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda rgb: session.run(None, {name: prepare_input(rgb, input_size)[np.newaxis]})[0][0]


def build_runtimes(path: str, threads: int) -> list[Runtime]:
    """TensorFlow, OpenVINO and ONNX Runtime (those installed) for the model at ``path``, TensorFlow first."""
    import models
    from follower.segmenter import Segmenter

    model, card = models.load(path)
    size = card["input_size"]
    builders = {
        "tensorflow": lambda: Segmenter(model, size).class_probabilities,
        "openvino": lambda: Segmenter(model, size, runtime="openvino", threads=threads).class_probabilities,
        "onnxruntime": lambda: onnxruntime_segment(model, size, threads),
    }
    runtimes = []
    for name, build in builders.items():
        started = time.perf_counter()
        try:
            segment = build()
        except Exception as error:  # noqa: BLE001 (a runtime that is missing or fails to convert is reported)
            print(f"{path}: {name} skipped: {type(error).__name__}: {error}")
            continue
        runtimes.append(Runtime(name, segment, time.perf_counter() - started))
    return runtimes


def check_parity(runtimes: Sequence[Runtime], frames: Sequence[np.ndarray]) -> None:
    """Each runtime's largest absolute difference of the class probabilities from the first's."""
    reference = [runtimes[0].segment(frame) for frame in frames]
    for runtime in runtimes:
        runtime.max_difference = max(
            float(np.abs(runtime.segment(frame) - expected).max()) for frame, expected in zip(frames, reference)
        )


def measure(runtimes: Sequence[Runtime], frames: Sequence[np.ndarray], args: argparse.Namespace) -> None:
    """Interleaved rounds: each runtime back to back, then paused, in turn; keeps each one's best round median."""
    for _ in range(args.rounds):
        for runtime in runtimes:
            for way, calls, pause in (("back to back", args.calls, 0.0), ("paused", args.paused_calls, args.pause)):
                runtime.best_ms[way] = min(runtime.best_ms[way], median_ms(runtime.segment, frames, calls, pause))


def table(runtimes: Sequence[Runtime], pause: float) -> list[str]:
    """A Markdown table of the runtimes, ratios to the first."""
    baseline = runtimes[0].best_ms
    lines = [
        f"| runtime | start-up s | max abs difference from TensorFlow | back to back ms | ratio | "
        f"{pause:g} s pauses ms | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for runtime in runtimes:
        ms = runtime.best_ms
        lines.append(
            f"| {runtime.name} | {runtime.startup_s:.1f} | {runtime.max_difference:.1e} | "
            f"{ms['back to back']:.2f} | {ms['back to back'] / baseline['back to back']:.2f} | "
            f"{ms['paused']:.2f} | {ms['paused'] / baseline['paused']:.2f} |"
        )
    return lines


def versions() -> str:
    """The versions of the runtimes installed."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("openvino", "onnxruntime", "tf2onnx"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} not installed")
    return ", ".join(found)


def main(argv: Sequence[str] | None = None) -> None:
    from follower.segmenter import set_inference_threads

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", default=[str(DEFAULT_MODEL), str(LEGACY_MODEL)])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50, help="calls back to back per round")
    parser.add_argument("--paused-calls", type=int, default=15, help="calls with a pause before each, per round")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds of sleep before each paused call")
    parser.add_argument("--frames", type=int, default=20, help="validation frames to time and compare on")
    parser.add_argument("--threads", type=int, default=1, help="threads per op, each runtime")
    args = parser.parse_args(argv)
    set_inference_threads(args.threads)
    about = machine()
    print(f"machine: {about['cpus']} CPU cores, {about['cpu_model']}; Python {about['python']}; {about['backend']}")
    loads = format_loads(os.getloadavg())
    print(f"runtimes: {versions()}; {args.threads} thread(s) per op; load average at the start: {loads}")
    frames = load_frames(args.frames)
    for path in args.models:
        runtimes = build_runtimes(path, args.threads)
        check_parity(runtimes, frames)
        measure(runtimes, frames, args)
        print(f"\n{path} (load average after it: {format_loads(os.getloadavg())})\n")
        print("\n".join(table(runtimes, args.pause)))


if __name__ == "__main__":
    main()
