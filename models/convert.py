"""Convert a 2017-era model (HDF5 weights + ``config_<name>``) to our Keras 3 native format.

    python -m models.convert LEGACY_WEIGHTS OUT

writes ``OUT.keras`` and ``OUT.card.json``; the converted model computes what the original did.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from models import legacy, store
from models.train import versions


def convert(weights: Path, out: Path) -> Path:
    """Convert the legacy pair at ``weights`` to ``out``; returns the written ``.keras`` path."""
    if not legacy.is_legacy_pair(weights):
        raise legacy.LegacyFormatError(
            f"{str(weights)!r} is not a legacy model: expected an HDF5 weights file with "
            f"{legacy.config_path(weights).name} beside it"
        )
    model = legacy.load_legacy(weights)
    card = {
        "arch": "legacy",
        "input_size": int(model.input_shape[1]),
        "parameters": model.count_params(),
        "input_scaling": "(x / 255 - 0.5) * 2, PIL bilinear resize",
        "converted_from": str(weights),
        "versions": versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return store.save(model, out, card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.convert", description=__doc__.split("\n")[0])
    parser.add_argument("weights", type=Path, help="legacy HDF5 weights file (config_<name> beside it)")
    parser.add_argument("out", type=Path, help="output name: writes OUT.keras and OUT.card.json")
    args = parser.parse_args(argv)
    try:
        written = convert(args.weights, args.out)
    except legacy.LegacyFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
