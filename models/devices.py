"""Which accelerator the active Keras backend computes on, in words."""

from __future__ import annotations

import keras


def describe_devices() -> str:
    """E.g. ``"jax: gpu (NVIDIA H100 80GB HBM3)"`` or ``"tensorflow: cpu"``."""
    backend = keras.backend.backend()
    gpus: list[str] = []
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    elif backend == "jax":
        import jax

        gpus = [str(getattr(d, "device_kind", d)) for d in jax.devices() if d.platform == "gpu"]
    elif backend == "torch":
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"{backend}: gpu ({', '.join(gpus)})" if gpus else f"{backend}: cpu"
