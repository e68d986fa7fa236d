"""Shift a trained model's target-class logit: its operating point between far-target recall and false positives.

    python -m models.target_bias SOURCE SHIFT OUT

Adds SHIFT to the target class's bias in the output convolution, before the softmax. A negative shift marks fewer
pixels as the target: the Udacity score's per-image decision (more than 3 target pixels) fires on fewer images
without the hero, and finds fewer far targets; a positive one does the opposite. Nothing else changes. Choose
SHIFT on validation sets (`python -m models.evaluate SOURCE VAL... --target-bias -1 -0.5 0` scores several in one
run), never on the held-out scenes. Measured use: docs/notes/2026-12-06-community-data-c3.md.
"""

from __future__ import annotations

import argparse
import math
import sys

import keras

from models import store
from models.imaging import TARGET_CLASS

OUTPUT_LAYER = "classes"
STALE = ("validation", "validations", "selection", "evaluation", "best_epoch")  # figures of the unshifted model


def shift_target_bias(model: keras.Model, shift: float) -> None:
    """Add ``shift`` to the target class's logit bias of ``model``'s output layer, in place."""
    layer = model.get_layer(OUTPUT_LAYER)
    kernel, bias = layer.get_weights()
    bias[TARGET_CLASS] += shift
    layer.set_weights([kernel, bias])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m models.target_bias", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="trained model")
    parser.add_argument("shift", type=float, help="added to the target logit, e.g. -0.5 for fewer false positives")
    parser.add_argument("out", help="where to save the shifted model (OUT.keras, OUT.card.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not math.isfinite(args.shift):
        print(f"error: the shift must be a finite number. Received: {args.shift}", file=sys.stderr)
        return 2
    try:
        model, card = store.load(args.source)
        shift_target_bias(model, args.shift)
    except (store.ModelLoadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    total = card.get("target_bias_shift", 0.0) + args.shift
    card = {name: value for name, value in card.items() if name not in STALE}
    card.update(target_bias_shift=total, shifted_from=str(args.source))
    print(f"target logit shifted by {args.shift:+g} (in all {total:+g}): {store.save(model, args.out, card)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
