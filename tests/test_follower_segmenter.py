"""follower.segmenter: a real Keras model behind one compiled, fixed-signature call (here under TensorFlow; the
other backends: tests/test_follower_backends.py)."""

from __future__ import annotations

import numpy as np
import pytest
from follower_helpers import TARGET_RGB, save_red_model

import models
from follower.segmenter import Segmenter


@pytest.fixture(scope="module")
def red(tmp_path_factory):
    return Segmenter.load(save_red_model(tmp_path_factory.mktemp("model") / "red", input_size=64))


def test_red_pixels_are_the_target(red):
    image = np.full((256, 256, 3), 110, np.uint8)
    image[100:140, 60:90] = TARGET_RGB
    probabilities = red(image)
    assert probabilities.shape == (64, 64) and probabilities.dtype == np.float32
    assert probabilities[30, 18] > 0.99 and probabilities[5, 5] < 0.01
    assert red.input_size == 64 and red.device == "CPU"


def test_the_compiled_call_is_traced_once(red):
    for size in (256, 64, 100):
        red(np.zeros((size, size, 3), np.uint8))
    assert red.compiled.experimental_get_tracing_count() == 1


def test_an_fcn_from_the_architecture_builder():
    segmenter = Segmenter(models.build_fcn("e8,c8,d8", 32), 32)
    probabilities = segmenter(np.zeros((256, 256, 3), np.uint8))
    assert probabilities.shape == (32, 32)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_a_missing_model_raises_a_clear_error(tmp_path):
    with pytest.raises(models.ModelLoadError, match="No model at"):
        Segmenter.load(tmp_path / "absent")
