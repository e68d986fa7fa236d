"""Loading the 2017 project's models: an HDF5 weights file plus ``config_<name>`` beside it.

The config is the JSON of ``model.to_json()`` from Keras 2.0 (tf.contrib.keras), usually JSON-encoded a
second time. Its custom layers are rebuilt with Keras 3 layers that compute the same thing:
``SeparableConv2DKeras`` is a ``SeparableConv2D`` (depthwise 3x3, pointwise 1x1, bias, activation) and
``BilinearUpSampling2D`` is ours (TF1 ``resize_bilinear``, align_corners=False, no half-pixel centres).
Weights are read from the HDF5 groups ``<layer>/<inner>/<weight>:0`` in the order the file lists them.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras
import numpy as np

from models.layers import BilinearUpSampling2D

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class LegacyFormatError(Exception):
    """A legacy config or weights file that cannot be rebuilt."""


def config_path(weights: Path) -> Path:
    """The ``config_<name>`` file that belongs beside a legacy weights file."""
    return weights.with_name(f"config_{weights.name}")


def is_legacy_pair(path: Path) -> bool:
    """True when ``path`` is an HDF5 file with its ``config_<name>`` beside it."""
    if not (path.is_file() and config_path(path).is_file()):
        return False
    with path.open("rb") as f:
        return f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE


def read_config(path: Path) -> dict:
    """The model config dict, whether the file holds JSON or JSON-encoded JSON."""
    try:
        data = json.loads(path.read_text())
        if isinstance(data, str):
            data = json.loads(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LegacyFormatError(f"Cannot read legacy config {str(path)!r}: {error}") from error
    if not isinstance(data, dict) or "config" not in data or "layers" not in data["config"]:
        raise LegacyFormatError(f"Legacy config {str(path)!r} is not a Keras functional model's JSON")
    return data["config"]


def _conv_args(config: dict) -> dict:
    return {
        "filters": config["filters"],
        "kernel_size": tuple(config["kernel_size"]),
        "strides": tuple(config.get("strides", (1, 1))),
        "padding": config.get("padding", "valid"),
        "activation": config.get("activation"),
        "use_bias": config.get("use_bias", True),
    }


def _make_layer(class_name: str, config: dict) -> keras.layers.Layer:
    name = config["name"]
    if class_name in ("SeparableConv2DKeras", "SeparableConv2D"):
        return keras.layers.SeparableConv2D(
            **_conv_args(config), depth_multiplier=config.get("depth_multiplier", 1), name=name
        )
    if class_name == "Conv2D":
        return keras.layers.Conv2D(**_conv_args(config), name=name)
    if class_name == "BatchNormalization":
        return keras.layers.BatchNormalization(
            axis=config.get("axis", -1),
            momentum=config.get("momentum", 0.99),
            epsilon=config.get("epsilon", 1e-3),
            center=config.get("center", True),
            scale=config.get("scale", True),
            name=name,
        )
    if class_name == "BilinearUpSampling2D":
        return BilinearUpSampling2D(size=tuple(config.get("size", (2, 2))), name=name)
    if class_name == "Concatenate":
        return keras.layers.Concatenate(axis=config.get("axis", -1), name=name)
    raise LegacyFormatError(f"Legacy layer {name!r} has an unsupported class {class_name!r}")


def build_from_config(config: dict) -> keras.Model:
    """Rebuild the functional graph of a Keras 2.0 model config with Keras 3 layers."""
    tensors = {}
    for layer in config["layers"]:
        class_name, layer_config = layer["class_name"], layer["config"]
        if class_name == "InputLayer":
            shape = layer_config["batch_input_shape"][1:]
            tensors[layer["name"]] = keras.Input(tuple(shape), name=layer["name"])
            continue
        inbound = [tensors[node[0]] for node in layer["inbound_nodes"][0]]
        tensors[layer["name"]] = _make_layer(class_name, layer_config)(inbound if len(inbound) > 1 else inbound[0])
    inputs = [tensors[entry[0]] for entry in config["input_layers"]]
    outputs = [tensors[entry[0]] for entry in config["output_layers"]]
    return keras.Model(inputs[0], outputs[0], name=config.get("name", "legacy"))


def _read_layer_weights(group: h5py.Group) -> dict[str, np.ndarray]:
    """A legacy layer group's weights keyed by their short name (``kernel``, ``gamma``, ...)."""
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
    return {name.split("/")[-1].split(":")[0]: np.asarray(group[name]) for name in names}


def load_weights(model: keras.Model, weights: Path) -> None:
    """Set every layer's weights from the legacy HDF5 file; raises LegacyFormatError on any mismatch."""
    try:
        with h5py.File(weights, "r") as f:
            for layer in model.layers:
                if not layer.weights:
                    continue
                if layer.name not in f:
                    raise LegacyFormatError(f"{str(weights)!r} has no weights for layer {layer.name!r}")
                stored = _read_layer_weights(f[layer.name])
                values = []
                for variable in layer.weights:
                    short = variable.path.split("/")[-1]
                    if short not in stored or stored[short].shape != tuple(variable.shape):
                        raise LegacyFormatError(
                            f"{str(weights)!r}: layer {layer.name!r} weight {short!r} is missing or has "
                            f"shape {getattr(stored.get(short), 'shape', None)}, expected {tuple(variable.shape)}"
                        )
                    values.append(stored[short])
                layer.set_weights(values)
    except OSError as error:
        raise LegacyFormatError(f"Cannot read legacy weights {str(weights)!r}: {error}") from error


def load_legacy(weights: Path) -> keras.Model:
    """The legacy model whose weights are at ``weights`` and config at ``config_<name>`` beside it."""
    model = build_from_config(read_config(config_path(weights)))
    load_weights(model, weights)
    return model
