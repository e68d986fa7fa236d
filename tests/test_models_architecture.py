"""The FCN builder, its presets and the TF1-exact bilinear upsampling."""

import numpy as np
import pytest

from models.architecture import PRESETS, build_fcn, parse_spec
from models.layers import BilinearUpSampling2D


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_with_the_recorded_input_size(name):
    model = build_fcn(name, 64)
    assert model.input_shape == (None, 64, 64, 3)
    assert model.output_shape == (None, 64, 64, 3)


def test_preset_fcn5_has_two_convs_per_decoder():
    spec = parse_spec("fcn5")
    assert spec.encoders == (64, 128) and spec.middle == 256 and spec.decoders == ((128, 2), (64, 2))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("e32,c64", "from one decoder to one per encoder"),
        ("e32,c64,d32,d16", "from one decoder to one per encoder"),
        ("e32,z4,d32", "Bad block 'z4'"),
        ("c64,e32,d32", "Encoders must come first"),
        ("e32x2,c64,d32", "Only decoder blocks"),
        ("e32,s16,c64,d32", "stem sN can only be the first block"),
        ("s16,e32,c64,d32,d16,d8", "one per encoder"),
    ],
)
def test_bad_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


def test_fewer_decoders_than_encoders_upsample_the_probabilities_to_the_input_size():
    model = build_fcn("e8,e16,e16,c16,d16", 64)
    assert model.output_shape == (None, 64, 64, 3)
    assert [layer.name for layer in model.layers[-3:]] == ["classes", "classes_up1", "classes_up2"]
    probabilities = np.asarray(model(np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype(np.float32)))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


def test_a_stem_halves_the_input_before_the_encoders_which_keep_their_names():
    model = build_fcn("s8,e8,e16,c16,d16,d8", 64)
    assert parse_spec("s8,e8,e16,c16,d16,d8").stem == 8
    assert model.get_layer("stem_conv").output.shape == (None, 32, 32, 8)
    assert model.get_layer("enc1_sepconv").output.shape == (None, 16, 16, 8)
    assert model.get_layer("dec2_concat").output.shape == (None, 32, 32, 16 + 8)  # the stem is the last skip
    assert model.output_shape == (None, 64, 64, 3) and model.layers[-1].name == "classes_up1"
    full = build_fcn("s8,e8,c16,d16,d8", 64)  # one decoder per stage reaches the input itself
    assert full.get_layer("dec2_concat").output.shape == (None, 64, 64, 16 + 3)
    with pytest.raises(ValueError, match="multiple of 8 for 3 stride-2 stages"):
        build_fcn("s8,e8,e16,c16,d16", 36)


def test_input_size_must_divide_by_the_downsampling():
    with pytest.raises(ValueError, match="multiple of 4"):
        build_fcn("fcn1", 30)


@pytest.mark.parametrize("training", [True, False])
def test_bilinear_upsampling_matches_tf1_resize_bilinear(training):
    """Training computes it with keras.ops on any backend; inference under TensorFlow with TF1's kernel."""
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype(np.float32)
    expected = tf.compat.v1.image.resize_bilinear(x, (10, 14), align_corners=False, half_pixel_centers=False)
    upsampled = BilinearUpSampling2D()(x, training=training)
    np.testing.assert_allclose(np.asarray(upsampled), expected.numpy(), atol=1e-6)


def test_bilinear_upsampling_is_exact_on_a_hand_computed_row():
    x = np.array([0.0, 2.0, 6.0], np.float32).reshape(1, 1, 3, 1)
    row = np.asarray(BilinearUpSampling2D()(x, training=True))[0, 0, :, 0]
    np.testing.assert_array_equal(row, [0.0, 1.0, 2.0, 4.0, 6.0, 6.0])
