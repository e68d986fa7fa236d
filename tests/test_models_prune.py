"""Pruning a trained model to a narrower spec: which channels stay, how the dropped ones are folded, the command."""

import keras
import numpy as np
import pytest
from conftest import make_dataset

from models import build_fcn, load, save
from models.prune import main, prune


def randomized(spec: str, size: int, seed: int = 0):
    """``spec`` at ``size`` with random weights and BatchNorm statistics, so that every channel carries signal."""
    model = build_fcn(spec, size)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = [rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            weights[3] = np.abs(weights[3]) + 0.5  # the moving variance
        if weights:
            layer.set_weights(weights)
    return model


def images(count: int, size: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (count, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("spec", ["e8,e8,c8,d8,d4", "s8,e8,e8,c8,d8x2,d8", "e8,e8,c8,d8"])
def test_the_same_spec_keeps_every_channel_and_the_outputs(spec):
    source, x = randomized(spec, 16), images(4, 16)
    pruned, keep = prune(source, spec, x)
    assert all(len(channels) == source.get_layer(name).output.shape[-1] for name, channels in keep.items())
    np.testing.assert_allclose(pruned.predict_on_batch(x), source.predict_on_batch(x), atol=1e-6)


def test_channels_nothing_reads_are_the_ones_dropped_and_the_outputs_stay():
    source, x = randomized("e8,e8,c8,d8,d4", 16), images(4, 16)
    consumer = source.get_layer("dec2_sepconv1")  # reads dec1's 8 channels, then enc1's 8
    depthwise, pointwise, bias = consumer.get_weights()
    dead = [1, 2, 5, 6]
    depthwise[:, :, dead], pointwise[:, :, dead] = 0.0, 0.0
    consumer.set_weights([depthwise, pointwise, bias])
    pruned, keep = prune(source, "e8,e8,c8,d4,d4", x)
    assert keep["dec1_bn1"].tolist() == [0, 3, 4, 7]
    np.testing.assert_allclose(pruned.predict_on_batch(x), source.predict_on_batch(x), atol=1e-5)


def test_a_constant_channel_is_dropped_and_its_value_folded_into_the_bias():
    source, x = randomized("e8,c8,d8", 16), images(4, 16)
    norm = source.get_layer("dec1_bn1")
    gamma, beta, moving_mean, moving_var = norm.get_weights()
    constant = [0, 2, 4, 6]
    gamma[constant] = 0.0  # the channel is beta wherever it is, and the classes' 1x1 conv reads it
    norm.set_weights([gamma, beta, moving_mean, moving_var])
    pruned, keep = prune(source, "e8,c8,d4", x)
    assert keep["dec1_bn1"].tolist() == [1, 3, 5, 7]
    np.testing.assert_allclose(pruned.predict_on_batch(x), source.predict_on_batch(x), atol=1e-5)


def test_the_target_class_pixels_count_as_much_as_the_background():
    """Of two channels of the last decoder, one varies everywhere and one only on the pixel per image where the
    model predicts the target: over all pixels the first spreads more, yet pruning to one keeps the second."""
    source = build_fcn("e8,c8,d2", 16)
    x = images(8, 16)
    x[:, 6, 6, 0] = 3.0  # one bright red pixel per image, which the last decoder sees through its image skip
    decoder = source.get_layer("dec1_sepconv1")  # reads the middle's 8 channels, then the image's 3
    depthwise, pointwise, _ = decoder.get_weights()
    depthwise[:], pointwise[:] = 0.0, 0.0
    depthwise[1, 1, 8:, 0] = 1.0  # the centre tap of the image's channels
    pointwise[0, 0, 9, 0] = 1.0  # channel 0: green, anywhere in [0, 1]
    pointwise[0, 0, 8, 1] = 1.0  # channel 1: red above 1.2, so only the bright pixel (1.8)
    decoder.set_weights([depthwise, pointwise, np.array([0.0, -1.2], np.float32)])
    kernel = np.zeros((1, 1, 2, 3), np.float32)
    kernel[0, 0, 0, 1], kernel[0, 0, 1, 2] = 1.0, 1.5  # channel 0 reads as other people, channel 1 as the target
    source.get_layer("classes").set_weights([kernel, np.array([0.0, -5.0, -2.0], np.float32)])
    predicted = source.predict_on_batch(x).argmax(-1)
    assert (predicted == 2).sum() == len(x) and (predicted[:, 6, 6] == 2).all()
    _, keep = prune(source, "e8,c8,d1", x)
    assert keep["dec1_bn1"].tolist() == [1]


def test_a_stem_and_repeated_decoder_convs_are_narrowed_too():
    source, x = randomized("s8,e8,e8,c8,d8x2,d8", 16), images(4, 16)
    pruned, keep = prune(source, "s4,e8,e8,c8,d4x2,d8", x)
    assert [len(keep[name]) for name in ("stem_bn", "dec1_bn1", "dec1_bn2", "dec2_bn1")] == [4, 4, 4, 8]
    assert pruned.predict_on_batch(x).shape == (4, 16, 16, 3)


def test_a_spec_that_widens_or_changes_the_blocks_is_refused():
    source, x = randomized("e8,c8,d8", 16), images(2, 16)
    with pytest.raises(ValueError, match="would widen from 8 to 16"):
        prune(source, "e8,c8,d16", x)
    with pytest.raises(ValueError, match="same order, only narrower"):
        prune(source, "e8,e8,c8,d8", x)


def test_the_command_saves_a_model_with_its_card(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", 6, size=32)
    save(randomized("e8,e8,c8,d8,d8", 32), tmp_path / "source", {"arch": "e8,e8,c8,d8,d8", "spec": "e8,e8,c8,d8,d8"})
    status = main([str(tmp_path / "source"), "e8,e4,c8,d4,d8", str(tmp_path / "out"), "--data", str(data)])
    assert status == 0
    model, card = load(tmp_path / "out")
    assert card["spec"] == "e8,e4,c8,d4,d8" and card["pruned_from"]["images"] == 6
    assert model.get_layer("enc2_bn").output.shape[-1] == 4
    assert "enc2_bn: kept 4 of 8 channels" in capsys.readouterr().out
    assert main([str(tmp_path / "source"), "e8,e16,c8,d8,d8", str(tmp_path / "bad"), "--data", str(data)]) == 2
    assert "would widen" in capsys.readouterr().err
