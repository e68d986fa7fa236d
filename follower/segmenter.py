"""The network behind the pipeline: a Keras FCN called through one compiled, fixed-shape TensorFlow function.

Keras' ``model.predict()`` rebuilds its data pipeline on every call, which costs more than the network itself
for one 160x160 frame; a ``tf.function`` with a fixed input signature is traced once, at start-up (the
warm-up), and then runs the graph directly.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

import models
from models.devices import describe_devices
from models.imaging import TARGET_CLASS, prepare_input


def set_inference_threads(threads: int) -> int:
    """Threads TensorFlow splits each op over (0: its default, one per core); call before the first model loads.
    Returns the setting as TensorFlow reports it.

    At the simulator's 5 frames/s the second thread mostly waits to be woken for each op after 200 ms idle, so on
    a 2-core machine one thread answers sooner and leaves the other core to the socket hub (docs/performance.md).
    """
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    return tf.config.threading.get_intra_op_parallelism_threads()


class Segmenter:
    """Target probabilities (S, S) float32 for an RGB uint8 image, from a softmax FCN with square inputs;
    `class_probabilities` gives every class (S, S, C) from the same compiled call."""

    def __init__(self, model: keras.Model, input_size: int, name: str = "model") -> None:
        self.model = model
        self.input_size = int(input_size)
        self.name = name
        self.device = describe_devices()
        signature = [tf.TensorSpec((1, self.input_size, self.input_size, 3), tf.float32, name="image")]
        self._infer = tf.function(self._forward, input_signature=signature, autograph=False)
        self(np.zeros((self.input_size, self.input_size, 3), np.uint8))  # warm-up: trace and allocate now

    @classmethod
    def load(cls, path: str | os.PathLike) -> Segmenter:
        """Load a saved model (see `models.load`); raises `models.ModelLoadError`."""
        model, card = models.load(path)
        return cls(model, card["input_size"], name=str(path))

    def _forward(self, batch: tf.Tensor) -> tf.Tensor:
        """The compiled call: the softmax for a batch of one."""
        return self.model(batch, training=False)[0]

    def class_probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """Probability per output pixel and class (S, S, C) for one image, resized and scaled as in training."""
        batch = prepare_input(rgb, self.input_size)[np.newaxis]
        return self._infer(tf.constant(batch)).numpy()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Target probability per output pixel (S, S) for one image."""
        return self.class_probabilities(rgb)[..., TARGET_CLASS]
