"""Widen a trained model to a wider spec of the same blocks, computing exactly what it computed.

    python -m models.widen SOURCE SPEC OUT [--seed 0]

SPEC names SOURCE's blocks in the same order, each at least as wide (``e32`` where SOURCE has ``e16``). Every
channel SOURCE has keeps its weights. A new channel reads its inputs through fresh random weights (the layer's
own initializer) and is read through zero weights, so the widened model's output is SOURCE's, to rounding, and
the new channels start learning from the first gradient step: train it with ``models.train --init OUT``. The
mirror of `models.prune`, which narrows. Measured use: docs/notes/2026-12-06-community-data-c3.md.

SPEC may also start with a stem ``sN`` in place of SOURCE's first encoder (``s32,e64,...`` for ``e32,e64,...``):
the stem's full 3x3 convolution starts as the kernel the separable one computed (depthwise times pointwise), and
can learn any 3x3 filter of the three colours, where a separable first encoder filters each colour once and mixes.
"""

from __future__ import annotations

import argparse
import sys

import keras
import numpy as np

from models import store
from models.architecture import build_fcn
from models.prune import check_same_blocks, input_parts, save_reshaped


def widen(source: keras.Model, spec: str, seed: int = 0) -> keras.Model:
    """``source`` widened to ``spec`` at its input size. Raises ValueError when ``spec`` is not ``source``'s
    blocks at least as wide."""
    keras.utils.set_random_seed(seed)
    target = build_fcn(spec, source.input_shape[1])
    grown_from = _grown_from(source, target)
    check_same_blocks(source, target, wider=True, grown_from=grown_from)
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(_widened_weights(source.get_layer(grown_from[layer.name]), layer, grown_from))
    return target


def _grown_from(source: keras.Model, target: keras.Model) -> dict[str, str]:
    """For each weighted layer of ``target``, the layer of ``source`` whose place it takes: the one of the same
    name, except when ``target`` has a stem and ``source`` has not: the stem takes the first encoder's place, and
    each later encoder the next one's."""
    renamed = {}
    if _has_stem(target) and not _has_stem(source):
        renamed = {"stem_conv": "enc1_sepconv", "stem_bn": "enc1_bn"}
        encoders = sum(1 for layer in target.layers if layer.name.startswith("enc") and layer.name.endswith("_bn"))
        for i in range(1, encoders + 1):
            renamed |= {f"enc{i}_sepconv": f"enc{i + 1}_sepconv", f"enc{i}_bn": f"enc{i + 1}_bn"}
    return {layer.name: renamed.get(layer.name, layer.name) for layer in target.layers if layer.weights}


def _has_stem(model: keras.Model) -> bool:
    return any(layer.name == "stem_conv" for layer in model.layers)


def _widened_weights(old: keras.layers.Layer, new: keras.layers.Layer, grown_from: dict[str, str]) -> list[np.ndarray]:
    """``new``'s freshly initialized weights with ``old``'s copied over its channels: the outputs ``old`` had
    keep their weights, and every input channel ``old`` did not have is read with zero weight. A full convolution
    in a separable one's place gets the kernel that computes the same (depthwise times pointwise)."""
    weights = new.get_weights()
    out = old.output.shape[-1]
    if isinstance(new, keras.layers.BatchNormalization):
        for w, w_old in zip(weights, old.get_weights()):
            w[:out] = w_old
        return weights
    old_in, new_in = _input_channels(old), _input_channels(new, grown_from)
    kept = np.concatenate([new_in[part][: len(channels)] for part, channels in old_in.items()])
    added = np.setdiff1d(np.arange(sum(map(len, new_in.values()))), kept)
    if isinstance(new, keras.layers.SeparableConv2D):
        depthwise, pointwise, bias = weights
        old_depthwise, old_pointwise, old_bias = old.get_weights()
        depthwise[:, :, kept] = old_depthwise
        pointwise[:, :, added] = 0.0
        pointwise[:, :, kept, :out] = old_pointwise
        bias[:out] = old_bias
        return [depthwise, pointwise, bias]
    kernel, bias = weights
    old_kernel, old_bias = _full_kernel(old)
    kernel[:, :, added] = 0.0
    kernel[:, :, kept, :out] = old_kernel
    bias[:out] = old_bias
    return [kernel, bias]


def _full_kernel(layer: keras.layers.Layer) -> tuple[np.ndarray, np.ndarray]:
    """A convolution's kernel and bias; for a separable one (depth multiplier 1), the full kernel it computes."""
    if not isinstance(layer, keras.layers.SeparableConv2D):
        kernel, bias = layer.get_weights()
        return kernel, bias
    depthwise, pointwise, bias = layer.get_weights()
    return depthwise * pointwise[0, 0], bias


def _input_channels(
    layer: keras.layers.Layer, grown_from: dict[str, str] | None = None
) -> dict[tuple[int, str], np.ndarray]:
    """The indices of ``layer``'s input channels, per producer (keyed by position and name, as a layer may read
    the image twice; a producer named by the source layer whose place it takes, per ``grown_from``)."""
    grown_from = grown_from or {}
    channels, offset = {}, 0
    for position, (producer, width) in enumerate(input_parts(layer)):
        channels[position, grown_from.get(producer, producer)] = np.arange(offset, offset + width)
        offset += width
    return channels


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m models.widen", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="trained model to widen")
    parser.add_argument("spec", help="the wider spec string, e.g. e32,e64,e128,e256,e256,c256,d128,d64,d32,d16,d8")
    parser.add_argument("out", help="where to save the widened model (OUT.keras, OUT.card.json)")
    parser.add_argument("--seed", type=int, default=0, help="for the new channels' input weights (default 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        source, card = store.load(args.source)
        model = widen(source, args.spec, args.seed)
    except (store.ModelLoadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, old_name in _grown_from(source, model).items():
        old, new = source.get_layer(old_name), model.get_layer(name)
        have, want = old.output.shape[-1], new.output.shape[-1]
        label = name if name == old_name else f"{old_name} -> {name}"
        if type(new) is not type(old):
            print(f"{label}: a full convolution, computing what the separable one did")
        elif isinstance(new, keras.layers.BatchNormalization) and (want > have or name != old_name):
            print(f"{label}: {have} -> {want} channels")
    origin = {"source": str(args.source), "source_spec": card.get("spec"), "seed": args.seed}
    save_reshaped(model, source, card, args.out, {"widened_from": origin})
    return 0


if __name__ == "__main__":
    sys.exit(main())
