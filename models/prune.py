"""Narrow a trained model to a slimmer spec of the same blocks, keeping each block's most important channels.

    python -m models.prune SOURCE SPEC OUT --data TRAIN_DIR [--images 192] [--seed 0]

SPEC names SOURCE's blocks in the same order, each at most as wide (``e16`` where SOURCE has ``e32``). Each
narrowed block keeps the channels whose loss would move its consumers most: the channel's spread about its mean
on ``--images`` images of TRAIN_DIR, over SOURCE's own background, other-people and target pixels weighed alike
(so that the target's few pixels count as much as the background's many), times the squared weights that read
it. A dropped channel is replaced by its mean, folded into its consumers' biases. The result is a warm start,
not a finished model: fine-tune it with SOURCE as the teacher (``models.train --init OUT --arch SPEC --teacher
SOURCE``). Measured use: docs/notes/2026-11-27-far-targets-pruned.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import keras
import numpy as np

from models import store
from models.architecture import build_fcn, resolve_arch
from models.dataset import DatasetError, list_pairs, read_image
from models.imaging import NUM_CLASSES, prepare_input
from models.layers import BilinearUpSampling2D

IMAGE = "image"  # the producer name of the input image's channels, which are never dropped
BATCH_SIZE = 16


def prune(source: keras.Model, spec: str, images: np.ndarray) -> tuple[keras.Model, dict[str, np.ndarray]]:
    """``source`` narrowed to ``spec`` (at its input size), judged on ``images`` (scaled, at the input size):
    the pruned model and the kept channel indices of each BatchNormalization block output. Raises ValueError when
    ``spec`` is not ``source``'s blocks at most as wide."""
    target = build_fcn(spec, source.input_shape[1])
    blocks = check_same_blocks(source, target)
    mean, spread = _channel_moments(source, blocks, images)
    block_after = {source.get_layer(name).input._keras_history.operation.name: name for name in blocks}  # conv: its BN
    read = _read_weights(source, blocks)
    keep = {}
    for name in blocks:
        width = target.get_layer(name).output.shape[-1]
        importance = spread[name] * read[name]
        keep[name] = np.sort(np.argsort(-importance, kind="stable")[:width])
    for layer in target.layers:
        if layer.weights:
            keep_out = keep[block_after[layer.name]] if layer.name in block_after else slice(None)
            layer.set_weights(_narrowed_weights(source.get_layer(layer.name), keep, keep_out, mean))
    return target, keep


def check_same_blocks(
    source: keras.Model, target: keras.Model, wider: bool = False, grown_from: dict[str, str] | None = None
) -> list[str]:
    """The names of ``source``'s BatchNormalization layers (the block outputs); raises ValueError unless
    ``target`` has the same weighted layers with no block wider (pruning) or, with ``wider``, narrower (widening).
    ``grown_from`` names the layer of ``source`` that each layer of ``target`` takes the place of (by default, the
    one of the same name); when widening, a full convolution may take the place of a separable one."""
    grown_from = grown_from or {}
    weighted = {layer.name: layer for layer in source.layers if layer.weights}
    pairs = [(weighted.get(grown_from.get(layer.name, layer.name)), layer) for layer in target.layers if layer.weights]
    if [getattr(old, "name", None) for old, _ in pairs] != list(weighted) or not all(
        _may_replace(old, new, wider) for old, new in pairs
    ):
        raise ValueError(
            f"The spec must have the source's blocks in the same order, only {'wider' if wider else 'narrower'}. "
            f"Received: spec={target.name!r} for a source {source.name!r}"
        )
    blocks = []
    for old, new in pairs:
        if isinstance(old, keras.layers.BatchNormalization):
            have, want = old.output.shape[-1], new.output.shape[-1]
            if want != have and (want > have) != wider:
                moved, tool = ("narrow", "widening only widens") if wider else ("widen", "pruning only narrows")
                raise ValueError(f"Block {old.name} would {moved} from {have} to {want} channels; {tool}")
            blocks.append(old.name)
    return blocks


def _may_replace(old: keras.layers.Layer, new: keras.layers.Layer, wider: bool) -> bool:
    """Whether ``new`` can take ``old``'s place: the same kind of layer or, when widening, a full convolution in
    place of a separable one (which it can compute exactly)."""
    separable_to_full = isinstance(old, keras.layers.SeparableConv2D) and type(new) is keras.layers.Conv2D
    return type(new) is type(old) or (wider and separable_to_full)


def input_parts(layer: keras.layers.Layer) -> list[tuple[str, int]]:
    """The producers of ``layer``'s input channels in order, as (block name or IMAGE, width): traced back through
    concatenations and upsamplings, which keep channels as they are."""

    def parts(tensor) -> list[tuple[str, int]]:
        producer = tensor._keras_history.operation
        if isinstance(producer, keras.layers.InputLayer):
            return [(IMAGE, tensor.shape[-1])]
        if isinstance(producer, keras.layers.BatchNormalization):
            return [(producer.name, tensor.shape[-1])]
        if isinstance(producer, keras.layers.Concatenate):
            return [part for piece in producer.input for part in parts(piece)]
        if isinstance(producer, BilinearUpSampling2D):
            return parts(producer.input)
        raise ValueError(f"Cannot trace the channels of {layer.name} through {producer.name}")

    return parts(layer.input)


def _channel_moments(
    source: keras.Model, blocks: list[str], images: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per block: each channel's mean over all pixels, and its mean squared distance from that mean averaged over
    the pixel groups of each class ``source`` predicts (groups it never predicts left out)."""
    probe = keras.Model(source.input, [source.get_layer(name).output for name in blocks] + [source.output])
    # Per block, class group and channel: the pixel count, the sum and the sum of squares.
    sums = {name: np.zeros((NUM_CLASSES, 3, probe.get_layer(name).output.shape[-1])) for name in blocks}
    for start in range(0, len(images), BATCH_SIZE):
        *outputs, probabilities = probe.predict_on_batch(images[start : start + BATCH_SIZE])
        classes = np.asarray(probabilities).argmax(-1)
        for name, output in zip(blocks, outputs):
            output = np.asarray(output, np.float64)
            step = classes.shape[1] // output.shape[1]
            groups = classes[:, ::step, ::step]
            for group in range(NUM_CLASSES):
                pixels = output[groups == group]
                sums[name][group] += [np.full(output.shape[-1], len(pixels)), pixels.sum(0), (pixels**2).sum(0)]
    mean, spread = {}, {}
    for name in blocks:
        count, total, squares = sums[name].transpose(1, 0, 2)  # each (class group, channel)
        mean[name] = total.sum(0) / count.sum(0)
        seen = count[:, 0] > 0
        spread[name] = np.mean((squares[seen] - 2 * mean[name] * total[seen]) / count[seen] + mean[name] ** 2, axis=0)
    return mean, spread


def _read_weights(source: keras.Model, blocks: list[str]) -> dict[str, np.ndarray]:
    """Per block and channel: the squared weights of every layer that reads it (a separable convolution's
    depthwise times pointwise norms), in one pass over the convolutions."""
    total = {name: np.zeros(source.get_layer(name).output.shape[-1]) for name in blocks}
    for layer in source.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D)):
            continue
        norms, offset = _input_norms(layer), 0
        for producer, width in input_parts(layer):
            if producer in total:
                total[producer] += norms[offset : offset + width]
            offset += width
    return total


def _input_norms(layer: keras.layers.Layer) -> np.ndarray:
    """The squared norm of the weights that read each input channel of a (separable) convolution."""
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise, pointwise, _ = layer.get_weights()
        return (depthwise[..., 0] ** 2).sum((0, 1)) * (pointwise[0, 0] ** 2).sum(1)
    kernel = layer.get_weights()[0]
    return (kernel**2).sum((0, 1, 3))


def _narrowed_weights(
    layer: keras.layers.Layer, keep: dict[str, np.ndarray], out: np.ndarray | slice, mean: dict[str, np.ndarray]
) -> list[np.ndarray]:
    """``layer``'s weights with the kept channels of each block (``keep``) as input and the ``out`` channels as
    output; each dropped input channel's mean is folded into the bias (exact for a constant channel away from the
    zero-padded border)."""
    weights = layer.get_weights()
    if isinstance(layer, keras.layers.BatchNormalization):
        return [w[keep[layer.name]] for w in weights]
    parts, dropped, offset = [], [], 0
    for producer, width in input_parts(layer):
        channels = keep.get(producer, np.arange(width))
        parts.append(offset + channels)
        dropped += [(offset + c, mean[producer][c]) for c in np.setdiff1d(np.arange(width), channels)]
        offset += width
    kept = np.concatenate(parts)
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise, pointwise, bias = weights
        bias = bias + sum((m * depthwise[..., c, 0].sum() * pointwise[0, 0, c] for c, m in dropped), 0.0)
        return [depthwise[:, :, kept], pointwise[:, :, kept][..., out], bias[out]]
    kernel, bias = weights
    bias = bias + sum((m * kernel[:, :, c].sum((0, 1)) for c, m in dropped), 0.0)
    return [kernel[:, :, kept][..., out], bias[out]]


def sample_images(data_dir: str | os.PathLike, count: int, size: int, seed: int = 0) -> np.ndarray:
    """``count`` images of a dataset folder drawn without replacement (``seed``), scaled at ``size``."""
    pairs = list_pairs(data_dir)
    chosen = np.random.default_rng(seed).choice(len(pairs), min(count, len(pairs)), replace=False)
    return np.stack([prepare_input(read_image(pairs[i][0]), size) for i in sorted(chosen)])


def save_reshaped(model: keras.Model, source: keras.Model, card: dict, out: str, origin: dict) -> None:
    """Save ``model``, narrowed or widened from ``source`` (whose card is ``card``), at ``out`` with a card naming
    its network and ``origin`` (how it was made); prints where."""
    spec = resolve_arch(model.name.replace("_", ","))
    out_card = {
        "arch": spec,
        "spec": spec,
        "input_size": card["input_size"],
        "classes": card.get("classes"),
        "input_scaling": card.get("input_scaling"),
        "parameters": model.count_params(),
        **origin,
    }
    print(f"{model.count_params()} parameters (from {source.count_params()}): {store.save(model, out, out_card)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m models.prune", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="trained model to narrow")
    parser.add_argument("spec", help="the narrower spec string, e.g. e16,e64,e128,e256,e256,c256,d128,d64,d16,d8,d4")
    parser.add_argument("out", help="where to save the pruned model (OUT.keras, OUT.card.json)")
    parser.add_argument("--data", required=True, help="images to judge the channels on (a training split)")
    parser.add_argument("--images", type=int, default=192, help="how many of them (default 192)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        source, card = store.load(args.source)
        images = sample_images(args.data, args.images, card["input_size"], args.seed)
        model, keep = prune(source, args.spec, images)
    except (DatasetError, store.ModelLoadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, channels in keep.items():
        if len(channels) < source.get_layer(name).output.shape[-1]:
            print(f"{name}: kept {len(channels)} of {source.get_layer(name).output.shape[-1]} channels")
    pruned = {"source": str(args.source), "source_spec": card.get("spec"), "data": str(Path(args.data)),
              "images": len(images), "seed": args.seed}  # fmt: skip
    save_reshaped(model, source, card, args.out, {"pruned_from": pruned})
    return 0


if __name__ == "__main__":
    sys.exit(main())
