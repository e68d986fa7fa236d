"""Loading and converting the 2017 project's models (HDF5 weights + config_<name>)."""

import json

import h5py
import numpy as np
import pytest
from conftest import FOLLOWME_DATA, LEGACY_WEIGHTS, require

from models import ModelLoadError, legacy, load
from models.convert import convert
from models.evaluate import load_eval_sets, score_sets

tf = pytest.importorskip("tensorflow")

WEIGHTS = {
    "sep": {"depthwise_kernel": (3, 3, 3, 1), "pointwise_kernel": (1, 1, 3, 4), "bias": (4,)},
    "bn": {"gamma": (4,), "beta": (4,), "moving_mean": (4,), "moving_variance": (4,)},
    "out": {"kernel": (1, 1, 7, 3), "bias": (3,)},
}


def layer(class_name, name, inbound, **config):
    return {
        "class_name": class_name,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": [[[source, 0, 0, {}] for source in inbound]] if inbound else [],
    }


def write_legacy_pair(folder, rng):
    """A small model in the 2017 format: config JSON encoded twice, HDF5 groups as Keras 2.0 wrote them."""
    conv = {"kernel_size": [3, 3], "padding": "same", "activation": "relu", "use_bias": True}
    layers = [
        layer("InputLayer", "input_1", [], batch_input_shape=[None, 16, 16, 3]),
        layer("SeparableConv2DKeras", "sep", ["input_1"], filters=4, strides=[2, 2], **conv),
        layer("BatchNormalization", "bn", ["sep"], axis=-1, epsilon=0.001),
        layer("BilinearUpSampling2D", "up", ["bn"], size=[2, 2]),
        layer("Concatenate", "cat", ["up", "input_1"], axis=-1),
        layer("Conv2D", "out", ["cat"], filters=3, kernel_size=[1, 1], strides=[1, 1], padding="same",
              activation="softmax", use_bias=True),
    ]  # fmt: skip
    config = {"class_name": "Model", "config": {"name": "model_1", "layers": layers,
              "input_layers": [["input_1", 0, 0]], "output_layers": [["out", 0, 0]]}}  # fmt: skip
    (folder / "config_weights").write_text(json.dumps(json.dumps(config)))
    values = {}
    with h5py.File(folder / "weights", "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in ("input_1", "sep", "bn", "up", "cat", "out")]
        for name in ("input_1", "up", "cat"):
            f.create_group(name).attrs["weight_names"] = []
        for name, shapes in WEIGHTS.items():
            group = f.create_group(name)
            names = [f"{name}_inner/{weight}:0" for weight in shapes]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for full, (weight, shape) in zip(names, shapes.items()):
                value = rng.uniform(0.5, 1.5, shape) if weight == "moving_variance" else rng.normal(size=shape)
                values[(name, weight)] = value.astype(np.float32)
                group[full] = values[(name, weight)]
    return folder / "weights", values


def reference_forward(x, w):
    """The same network written with TensorFlow primitives, TF1 resize_bilinear included."""
    y = tf.nn.separable_conv2d(
        x, w["sep", "depthwise_kernel"], w["sep", "pointwise_kernel"], strides=[1, 2, 2, 1], padding="SAME"
    )
    y = tf.nn.relu(y + w["sep", "bias"])
    y = tf.nn.batch_normalization(
        y, w["bn", "moving_mean"], w["bn", "moving_variance"], w["bn", "beta"], w["bn", "gamma"], 1e-3
    )
    y = tf.compat.v1.image.resize_bilinear(y, (16, 16), align_corners=False, half_pixel_centers=False)
    y = tf.concat([y, x], axis=-1)
    return tf.nn.softmax(tf.nn.conv2d(y, w["out", "kernel"], 1, "SAME") + w["out", "bias"]).numpy()


def test_a_legacy_pair_loads_and_computes_what_the_original_layers_did(tmp_path):
    rng = np.random.default_rng(0)
    weights, values = write_legacy_pair(tmp_path, rng)
    model, card = load(weights)
    assert card["input_size"] == 16 and card["arch"] == "legacy"
    x = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict_on_batch(x), reference_forward(x, values), atol=1e-5)


def test_conversion_round_trip_gives_the_same_outputs(tmp_path):
    rng = np.random.default_rng(1)
    weights, _ = write_legacy_pair(tmp_path, rng)
    written = convert(weights, tmp_path / "converted")
    assert written.name == "converted.keras"
    original, _ = load(weights)
    converted, card = load(tmp_path / "converted")
    assert card["converted_from"] == str(weights) and card["input_size"] == 16
    x = rng.normal(size=(1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(converted.predict_on_batch(x), original.predict_on_batch(x), atol=1e-6)


def test_missing_weights_are_named(tmp_path):
    weights, _ = write_legacy_pair(tmp_path, np.random.default_rng(2))
    with h5py.File(weights, "a") as f:
        del f["bn"]
    with pytest.raises(ModelLoadError, match="no weights for layer 'bn'") as raised:
        load(weights)
    assert isinstance(raised.value.__cause__, legacy.LegacyFormatError)  # what `load` raises for any model file


def test_the_2017_model_scores_the_published_check_figures():
    require(LEGACY_WEIGHTS, "the 2017 legacy weights")
    validation = require(FOLLOWME_DATA / "validation", "the validation set")
    model, card = load(LEGACY_WEIGHTS)
    result, _ = score_sets(model, load_eval_sets(validation, card["input_size"]))
    counts = result["scenarios"]["validation"]
    assert (counts["true_pos"], counts["false_pos"], counts["false_neg"]) == (248, 78, 46)
    assert result["final_iou"] == pytest.approx(0.6244, abs=5e-5)
    assert result["final_score"] == pytest.approx(0.4163, abs=5e-5)
