"""The network behind the pipeline: a Keras FCN called through one compiled, fixed-shape function of the backend
Keras runs on (``KERAS_BACKEND``, read once at import: a process has one backend).

Keras' ``model.predict()`` rebuilds its data pipeline on every call, which costs more than the network itself
for one 160x160 frame. Each backend compiles the forward pass its own way, traced once at start-up (the
warm-up), on the device the backend computes on (the first GPU when it has one, else the CPU):

- ``tensorflow``: a ``tf.function`` with a fixed input signature;
- ``jax``: ``jax.jit`` over the model's stateless call, its weights placed on the device once;
- ``torch``: ``torch.compile`` of the model's exported graph, called under ``torch.inference_mode`` (3 times faster
  than the model uncompiled on the CPU, docs/performance.md), or the model uncompiled where compiling fails.

Another runtime may run the network instead (``runtime="openvino"``: OpenVINO's CPU plugin, the model converted at
start-up from that ``tf.function``, under TensorFlow only; a frame in 0.4–0.5 of TensorFlow's time on a 2-core Intel
Xeon, docs/performance.md). `load_served` loads a model as the server runs it, choosing the runtime for "auto" and
each runtime's inference threads. Only the active backend and runtime are imported: TensorFlow need not be installed
to serve with JAX or PyTorch.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

import models
from follower.config import RUNTIMES
from models.devices import default_device
from models.imaging import TARGET_CLASS, prepare_input

if TYPE_CHECKING:
    import openvino

logger = logging.getLogger("follower")

# A batch of one prepared image (1, S, S, 3) float32 → its class probabilities (S, S, C) float32.
Forward = Callable[[np.ndarray], np.ndarray]

# OpenVINO on the CPU: one stream answering one frame at a time, in float32 (on CPUs with AMX or AVX512-BF16 it
# computes in bfloat16 by default, 0.06 away from TensorFlow's probabilities).
OPENVINO_CPU = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"}
# Inference threads per runtime unless set (0: one per core). At the simulator's 5 frames/s on a 2-core Intel Xeon,
# TensorFlow answered sooner with 1 thread (the second one mostly waits to be woken), OpenVINO with 2
# (docs/performance.md).
DEFAULT_THREADS = {"keras": 1, "openvino": 0}
X86_64 = ("x86_64", "amd64")


class RuntimeUnavailableError(RuntimeError):
    """A runtime this process cannot run: its package is not installed, or it needs another Keras backend."""


def set_inference_threads(threads: int) -> int | None:
    """Threads the backend splits each op over (0: its default, one per core); call before the first model loads.
    Returns the setting as the backend reports it, or None under JAX, whose CPU threads XLA fixes itself.

    At the simulator's 5 frames/s the second thread mostly waits to be woken for each op after 200 ms idle, so on
    a 2-core machine one thread answers sooner and leaves the other core to the socket hub (docs/performance.md).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        return tf.config.threading.get_intra_op_parallelism_threads()
    if backend == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        return torch.get_num_threads()
    return None


def _tf_function(model: keras.Model, shape: tuple[int, ...]) -> Any:
    """The model's forward pass as a ``tf.function`` traced for exactly ``shape``."""
    import tensorflow as tf

    signature = [tf.TensorSpec(shape, tf.float32, name="image")]
    return tf.function(lambda batch: model(batch, training=False)[0], input_signature=signature, autograph=False)


def _compile_tensorflow(model: keras.Model, shape: tuple[int, ...]) -> tuple[Forward, object]:
    """A ``tf.function`` traced for exactly ``shape``: (the call, the ``tf.function``)."""
    import tensorflow as tf

    compiled = _tf_function(model, shape)
    return lambda batch: compiled(tf.constant(batch)).numpy(), compiled


def _compile_jax(model: keras.Model, shape: tuple[int, ...]) -> tuple[Forward, object]:
    """``jax.jit`` over ``model.stateless_call``, the weights on the default device: (the call, the jitted function).

    The weights are arguments, not constants folded into the program, so compiling stays quick; they are put on
    the device here, once, and every call only moves the image there and the probabilities back.
    """
    import jax

    device = jax.devices()[0]
    trainable = jax.device_put([v.value for v in model.trainable_variables], device)
    non_trainable = jax.device_put([v.value for v in model.non_trainable_variables], device)

    @jax.jit
    def compiled(trainable, non_trainable, batch):
        outputs, _ = model.stateless_call(trainable, non_trainable, batch, training=False)
        return outputs[0]

    return lambda batch: np.asarray(compiled(trainable, non_trainable, batch)), compiled


def _compile_torch(model: keras.Model, shape: tuple[int, ...]) -> tuple[Forward, object]:
    """``torch.compile`` of the model's exported graph, called under ``torch.inference_mode`` and compiled now: (the
    call, the compiled graph). Where exporting or compiling fails (no C++ compiler for the CPU, no Triton for the
    GPU, as on many Windows machines) the Keras model runs uncompiled, with a warning.

    The graph (``torch.export``) holds no Keras Python: compiled from the model itself, each of the server's worker
    threads would compile it again, since Keras keeps per-thread state that the compiled code checks. On an H100
    even the graph took 2–3 s on the first frame of each of eventlet's worker threads, so every call, the
    compiling one included, runs on one thread of its own (docs/performance.md).
    """
    import torch

    device = model.weights[0].value.device  # where Keras put the weights: its GPU when it has one

    inference_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch-inference")

    def call(module: Callable) -> Forward:
        def forward(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():  # a copy, with the same strides for every frame: no recompiling for them
                return module(torch.tensor(batch, device=device), training=False)[0].cpu().numpy()

        return lambda batch: inference_thread.submit(forward, batch).result()

    try:
        with warnings.catch_warnings():  # Dynamo says, for a few of Keras' cached functions, that it traces them
            warnings.filterwarnings("ignore", message="Dynamo detected a call to a `functools.lru_cache`")
            example = (torch.zeros(shape, device=device),)
            compiled = torch.compile(torch.export.export(model, example, {"training": False}).module())
            call(compiled)(np.zeros(shape, np.float32))
    except Exception as error:  # torch's compilers fail in many ways; the model itself still runs
        logger.warning("torch.compile failed, serving the model uncompiled: %s: %s", type(error).__name__, error)
        return call(model), model
    return call(compiled), compiled


_COMPILERS = {"tensorflow": _compile_tensorflow, "jax": _compile_jax, "torch": _compile_torch}


def compile_forward(model: keras.Model, shape: tuple[int, ...]) -> tuple[Forward, object]:
    """The model's forward pass for batches of ``shape``, compiled for the active backend: (the call, the backend's
    compiled object, for inspection). Raises ValueError on a backend without a compiler here."""
    backend = keras.backend.backend()
    if backend not in _COMPILERS:
        raise ValueError(f"KERAS_BACKEND must be one of {', '.join(_COMPILERS)} to serve. Received: {backend!r}")
    return _COMPILERS[backend](model, shape)


def compile_openvino(model: keras.Model, shape: tuple[int, ...], threads: int = 0) -> tuple[Forward, object]:
    """The model's forward pass for batches of ``shape`` on OpenVINO's CPU plugin, converted in process from the
    ``tf.function`` TensorFlow would run, ``threads`` inference threads (0: OpenVINO's default, one per core):
    (the call, the OpenVINO compiled model). Raises RuntimeUnavailableError without TensorFlow as the Keras backend
    (Keras' own OpenVINO export fails under JAX 0.10: XlaCallModule) or without the ``openvino`` package."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeUnavailableError(
            f"OpenVINO needs KERAS_BACKEND=tensorflow to convert the model. Received: {backend!r}"
        )
    openvino = _import_openvino()
    converted = replace_softmax(openvino.convert_model(_tf_function(model, shape).get_concrete_function()))
    compiled = openvino.Core().compile_model(converted, "CPU", {**OPENVINO_CPU, "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    return lambda batch: request.infer([batch])[0], compiled


def replace_softmax(converted: openvino.Model) -> openvino.Model:
    """``converted`` (an OpenVINO model) with each softmax over the classes of an (N, H, W, C) tensor rewritten as
    1x1 convolutions on the class planes: p_k = 1 / (1 + Σ_j≠k exp(x_j − x_k)), the differences clipped at 80 so
    that no exponential is infinite. The same probabilities (within 2e-7), with no max to subtract, without
    OpenVINO's Softmax kernel (1.9 of slim5's 5.9 ms at 256 px, docs/performance.md) and without the reorders
    that an exp / sum over the last axis needs; OpenVINO folds the transposes into the layers around them."""
    from openvino import opset13

    for node in converted.get_ordered_ops():
        if node.get_type_name() != "Softmax":
            continue
        logits = node.input_value(0)
        shape = logits.get_partial_shape()
        if shape.rank.get_length() != 4 or node.get_attributes()["axis"] not in (-1, 3) or not shape[3].is_static:
            continue
        differences, sums = _softmax_convolutions(shape[3].get_length())
        planes = opset13.transpose(logits, opset13.constant(np.array([0, 3, 1, 2], np.int64)))
        exp = opset13.exp(opset13.minimum(_conv1x1(planes, differences), opset13.constant(np.float32(80))))
        one = opset13.constant(np.float32(1))
        probabilities = opset13.divide(one, opset13.add(_conv1x1(exp, sums), one))
        channels_last = opset13.transpose(probabilities, opset13.constant(np.array([0, 2, 3, 1], np.int64)))
        node.output(0).replace(channels_last.output(0))
    converted.validate_nodes_and_infer_types()
    return converted


def _softmax_convolutions(classes: int) -> tuple[np.ndarray, np.ndarray]:
    """1x1 kernels (out, in, 1, 1) for `replace_softmax`: x_j − x_k for each ordered pair j ≠ k, and the sum of
    each class k's pairs."""
    pairs = [(j, k) for k in range(classes) for j in range(classes) if j != k]
    differences = np.zeros((len(pairs), classes, 1, 1), np.float32)
    sums = np.zeros((classes, len(pairs), 1, 1), np.float32)
    for row, (j, k) in enumerate(pairs):
        differences[row, j], differences[row, k], sums[k, row] = 1.0, -1.0, 1.0
    return differences, sums


def _conv1x1(planes, kernel: np.ndarray):
    """An OpenVINO 1x1 convolution of ``planes`` (N, C, H, W) by ``kernel`` (out, C, 1, 1), no bias."""
    from openvino import opset13

    return opset13.convolution(planes, opset13.constant(kernel), [1, 1], [0, 0], [0, 0], [1, 1])


def _import_openvino():
    """``openvino`` with its converter's telemetry stub, so that nothing is sent: with the ``openvino-telemetry``
    package it depends on, importing it sends a usage event to Google Analytics from a forked process unless the
    user opted out (``opt_in_out --opt_out``). Raises RuntimeUnavailableError when it is not installed."""
    sys.modules.setdefault("openvino_telemetry", None)  # an ImportError for it: OpenVINO falls back to its stub
    try:
        import openvino
    except ImportError as error:
        raise RuntimeUnavailableError("OpenVINO is not installed: pip install 'followme[serve-openvino]'") from error
    return openvino


def choose_runtime(runtime: str) -> str:
    """``runtime``, or for ``"auto"`` the one that answers soonest where it can run: OpenVINO where it is installed
    and TensorFlow would compute on the CPU of an x86-64 machine (measured on Intel; OpenVINO's CPU plugin runs on
    AMD's too), else the backend's own compiled call (``"keras"``)."""
    if runtime != "auto":
        return runtime
    openvino_fits = (
        keras.backend.backend() == "tensorflow"
        and platform.machine().lower() in X86_64
        and importlib.util.find_spec("openvino") is not None
        and default_device() == "CPU"
    )
    return "openvino" if openvino_fits else "keras"


def load_served(
    path: str | os.PathLike, runtime: str = "auto", threads: int | None = None
) -> tuple[Segmenter, int | None]:
    """Load a saved model as the server runs it: on `choose_runtime` (``runtime``), with ``threads`` inference threads
    or, for None, the runtime's `DEFAULT_THREADS`; sets the backend's threads too, so call it before any model loads.
    Returns (the segmenter, its inference threads: 0 for one per core, None for XLA's own).

    Where "auto" chose OpenVINO and the conversion fails, the backend runs the model, with a warning. Raises
    `models.ModelLoadError` and RuntimeUnavailableError."""
    chosen = choose_runtime(runtime)
    backend_threads = set_inference_threads(DEFAULT_THREADS["keras"] if threads is None else threads)
    if chosen == "keras":
        return Segmenter.load(path), backend_threads
    engine_threads = DEFAULT_THREADS[chosen] if threads is None else threads
    try:
        return Segmenter.load(path, chosen, engine_threads), engine_threads
    except models.ModelLoadError:
        raise
    except Exception as error:  # the converters fail in many ways; the backend still runs the model
        if runtime != "auto":
            raise
        logger.warning("%s could not run %s (%s: %s); running it on %s", chosen, path, type(error).__name__, error,
                       keras.backend.backend())  # fmt: skip
        return Segmenter.load(path), backend_threads


def describe_threads(threads: int | None) -> str:
    """`load_served`'s inference threads in words: ``"2"``, ``"one per core"`` (0), ``"XLA's own"`` (None)."""
    return "XLA's own" if threads is None else str(threads or "one per core")


class Segmenter:
    """Target probabilities (S, S) float32 for an RGB uint8 image, from a softmax FCN with square inputs;
    `class_probabilities` gives every class (S, S, C) from the same compiled call. ``runtime`` says what runs it
    (``"keras"``: the backend's compiled call; ``"openvino"``), ``backend`` and ``device`` where (``"jax"``,
    ``"GPU 0: NVIDIA H100 80GB HBM3"`` or ``"CPU"``). ``threads`` are OpenVINO's inference threads (0: its default);
    the backend's are set by `set_inference_threads`. Raises RuntimeUnavailableError for a runtime that cannot run
    here."""

    def __init__(
        self, model: keras.Model, input_size: int, name: str = "model", runtime: str = "keras", threads: int = 0
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}. Received: runtime={runtime!r}")
        self.model = model
        self.input_size = int(input_size)
        self.name = name
        self.runtime = runtime
        self.backend = keras.backend.backend()
        self.device = default_device() if runtime == "keras" else "CPU"
        shape = (1, self.input_size, self.input_size, 3)
        if runtime == "openvino":
            self._infer, self.compiled = compile_openvino(model, shape, threads)
        else:
            self._infer, self.compiled = compile_forward(model, shape)
        self(np.zeros((self.input_size, self.input_size, 3), np.uint8))  # warm-up: trace and allocate now

    @classmethod
    def load(cls, path: str | os.PathLike, runtime: str = "keras", threads: int = 0) -> Segmenter:
        """Load a saved model (see `models.load`) to run on ``runtime``; raises `models.ModelLoadError` and
        RuntimeUnavailableError."""
        model, card = models.load(path)
        return cls(model, card["input_size"], name=str(path), runtime=runtime, threads=threads)

    def class_probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """Probability per output pixel and class (S, S, C) for one image, resized and scaled as in training."""
        return self._infer(prepare_input(rgb, self.input_size)[np.newaxis])

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Target probability per output pixel (S, S) for one image."""
        return self.class_probabilities(rgb)[..., TARGET_CLASS]
