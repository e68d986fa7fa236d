"""Widening a trained model to a wider spec: the outputs stay, the new channels learn, the command."""

import json

import numpy as np
import pytest
from test_models_prune import images, randomized

from models import load, save
from models.widen import main, widen


@pytest.mark.parametrize(
    ("spec", "wider"),
    [
        ("e8,e8,c8,d8,d4", "e16,e8,c12,d8,d8"),
        ("s8,e8,e8,c8,d8x2,d8", "s16,e16,e8,c8,d16x2,d12"),
        ("e8,e8,c8,d8", "e8,e16,c16,d16"),
        ("e8,e8,c8,d8,d4", "e8,e8,c8,d8,d4"),
        ("e8,e8,c8,d8,d4", "s8,e8,c8,d8,d4"),  # the first encoder becomes a full-convolution stem
        ("e8,e8,e8,c8,d8,d4,d4", "s16,e8,e12,c8,d8,d8,d4"),  # ... and widens with the others
    ],
)
def test_the_widened_model_computes_what_the_source_did(spec, wider):
    source, x = randomized(spec, 16), images(4, 16)
    widened = widen(source, wider, seed=3)
    assert widened.count_params() >= source.count_params()
    np.testing.assert_allclose(widened.predict_on_batch(x), source.predict_on_batch(x), atol=1e-5)


def test_the_new_channels_compute_something_and_are_read_with_zero_weight():
    widened = widen(randomized("e8,e8,c8,d8,d4", 16), "e16,e8,c8,d8,d4")
    depthwise, pointwise, _ = widened.get_layer("enc1_sepconv").get_weights()
    assert np.abs(pointwise[0, 0, :, 8:]).sum() > 0  # fresh input weights: the new channels are not dead
    _, reader, _ = widened.get_layer("enc2_sepconv").get_weights()
    assert np.all(reader[0, 0, 8:] == 0) and np.abs(reader[0, 0, :8]).sum() > 0
    _, skip_reader, _ = widened.get_layer("dec2_sepconv1").get_weights()  # dec1's 8 channels, then enc1's 16
    assert np.all(skip_reader[0, 0, 16:] == 0) and np.abs(skip_reader[0, 0, 8:16]).sum() > 0


def test_a_stem_in_the_first_encoders_place_gets_its_full_kernel():
    source = randomized("e8,e8,c8,d8,d4", 16)
    depthwise, pointwise, bias = source.get_layer("enc1_sepconv").get_weights()
    kernel, stem_bias = widen(source, "s8,e8,c8,d8,d4").get_layer("stem_conv").get_weights()
    for i, j in np.ndindex(3, 3):  # each tap: the depthwise weight of its input channel times the pointwise
        np.testing.assert_allclose(kernel[i, j], depthwise[i, j] * pointwise[0, 0], rtol=1e-6)
    np.testing.assert_array_equal(stem_bias, bias)


@pytest.mark.parametrize(
    ("wider", "message"),
    [
        ("e4,e8,c8,d8,d4", "would narrow from 8 to 4"),
        ("e8,e8,e8,c8,d8,d4", "same order, only wider"),
        ("s8,e8,e8,c8,d8,d4", "same order, only wider"),  # a stem in front of the encoders adds a stage
    ],
)
def test_a_spec_that_is_not_a_widening_is_refused(wider, message):
    with pytest.raises(ValueError, match=message):
        widen(randomized("e8,e8,c8,d8,d4", 16), wider)


def test_the_command_saves_a_widened_model_with_its_card(tmp_path, capsys):
    source = randomized("e8,e8,c8,d8,d4", 16)
    save(source, tmp_path / "source", {"arch": "e8,e8,c8,d8,d4", "spec": "e8,e8,c8,d8,d4", "input_size": 16})
    assert main([str(tmp_path / "source"), "e16,e8,c8,d8,d8", str(tmp_path / "wide")]) == 0
    assert "enc1_bn: 8 -> 16 channels" in capsys.readouterr().out
    model, card = load(tmp_path / "wide")
    assert card["spec"] == "e16,e8,c8,d8,d8" and card["widened_from"]["source_spec"] == "e8,e8,c8,d8,d4"
    x = images(2, 16)
    np.testing.assert_allclose(model.predict_on_batch(x), source.predict_on_batch(x), atol=1e-5)
    assert json.loads((tmp_path / "wide.card.json").read_text())["parameters"] == model.count_params()
    assert main([str(tmp_path / "source"), "e4,e8,c8,d8,d4", str(tmp_path / "narrow")]) == 2
    assert "would narrow" in capsys.readouterr().err
    assert main([str(tmp_path / "source"), "s8,e16,c8,d8,d4", str(tmp_path / "stem")]) == 0
    out = capsys.readouterr().out
    assert "enc1_sepconv -> stem_conv: a full convolution" in out and "enc2_bn -> enc1_bn: 8 -> 16 channels" in out
    np.testing.assert_allclose(load(tmp_path / "stem")[0].predict_on_batch(x), source.predict_on_batch(x), atol=1e-5)
