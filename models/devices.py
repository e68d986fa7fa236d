"""Which accelerator the active Keras backend computes on, in words."""

from __future__ import annotations

import importlib

import keras


def gpu_names() -> list[str]:
    """Names of the GPUs the active Keras backend sees (empty on the CPU)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [
            tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")
        ]
    if backend == "jax":
        import jax

        return [str(getattr(d, "device_kind", d)) for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def backend_version() -> str:
    """The active Keras backend and its version: ``"jax 0.10.2"``."""
    backend = keras.backend.backend()
    return f"{backend} {importlib.import_module(backend).__version__}"


def default_device() -> str:
    """The device the active Keras backend computes on unless told otherwise: ``"GPU 0: NVIDIA H100 80GB HBM3"``
    (the first GPU, as every backend picks it) or ``"CPU"``."""
    gpus = gpu_names()
    return f"GPU 0: {gpus[0]}" if gpus else "CPU"


def describe_devices() -> str:
    """``"GPU (NVIDIA H100 80GB HBM3)"`` or ``"CPU"``."""
    gpus = gpu_names()
    return f"GPU ({', '.join(gpus)})" if gpus else "CPU"
