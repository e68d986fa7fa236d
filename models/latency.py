"""CPU milliseconds per frame of a network, measured the same way whatever else the process does.

What `ms_per_frame` measures: the median wall time of ``model.predict_on_batch`` on one random frame at the
model's input size (a batch of one, already scaled; no decode or resize), after ``WARMUP`` calls, best of
``ROUNDS`` rounds of ``FRAMES`` calls, so that a moment of load from elsewhere does not count.

`CpuTimer` runs that in a child process of its own that sees no GPU (``CUDA_VISIBLE_DEVICES=""``,
``JAX_PLATFORMS=cpu``) and computes with one thread, as the server does by default (``--inference-threads 1``).
The network is rebuilt there from its config with random weights (the time does not depend on them), so the
figure is comparable between trials whatever the trainer's threads or device.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

WARMUP, ROUNDS, FRAMES = 10, 10, 10
SINGLE_THREAD_ENV = {
    "CUDA_VISIBLE_DEVICES": "",
    "JAX_PLATFORMS": "cpu",
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}


def ms_per_frame(model, frames: int = FRAMES, rounds: int = ROUNDS) -> float:
    """Best round median of ``frames`` single-frame ``predict_on_batch`` calls, in milliseconds."""
    size = int(model.input_shape[1])
    frame = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    for _ in range(WARMUP):
        model.predict_on_batch(frame)
    best = float("inf")
    for _ in range(rounds):
        times = []
        for _ in range(frames):
            started = time.perf_counter()
            model.predict_on_batch(frame)
            times.append(time.perf_counter() - started)
        best = min(best, float(np.median(times)))
    return best * 1000


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(errors="replace"), re.M)
    except OSError:
        found = None
    return found.group(1).strip() if found else platform.processor() or platform.machine()


def _single_thread(parent: int) -> None:
    """Child initializer: one thread, no GPU (before Keras is imported), and an end with ``parent``."""
    os.environ.update(SINGLE_THREAD_ENV)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """End this process once ``parent`` is gone (killed, say), which the pool would not notice."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _import_keras() -> None:
    import keras  # noqa: F401

    from models import layers  # noqa: F401  (registers the custom layers for deserialization)


def _measure_config(config: dict) -> float:
    import keras

    _import_keras()
    return ms_per_frame(keras.Model.from_config(config))


class CpuTimer:
    """A child process that times networks with one thread, without a GPU; use as a context manager."""

    def __init__(self):
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_single_thread,
            initargs=(os.getpid(),),
        )
        self._pool.submit(_import_keras)  # the child starts now, while the caller loads its data

    def measure(self, model) -> float:
        """CPU milliseconds per frame of ``model``'s architecture (see the module docstring)."""
        return self._pool.submit(_measure_config, model.get_config()).result()

    def __enter__(self) -> CpuTimer:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(cancel_futures=True)
