"""Build a far-target check set from a dataset's own images: many more far targets than it holds.

    python -m models.farset SOURCE_DIR OUT_DIR [--count 600] [--seed 0]

Validation has only 53 images with a target of 4 to 100 native pixels, too few to tell two models apart. This
command cuts the targets of SOURCE_DIR out by their masks (those of 400 pixels or more, so they scale down
cleanly), scales each to an area drawn uniformly from 4 to 100 pixels of the 256x256 frame, and pastes it at a
random place into an image of SOURCE_DIR without the target (each used once while they last), with the mask
updated. Everything comes from SOURCE_DIR, so a check set built from validation never sees training data.
The same source and seed give the same set. OUT_DIR is a dataset like any other (``images/*.jpeg``,
``masks/*.png``) plus ``manifest.json`` (source image, cutout, target area per image); it is written to a
temporary folder and renamed, so it is complete or absent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from models.augment import CUTOUT_MIN_PIXELS, collect_targets, paste_scaled
from models.dataset import DatasetError, load_dataset
from models.files import write_json
from models.imaging import TARGET_CLASS, classes_to_mask
from models.sizes import NATIVE_SIZE, SIZE_BUCKETS, is_far, target_areas

FAR_AREAS = (SIZE_BUCKETS[0][1], SIZE_BUCKETS[1][2])
ATTEMPTS = 20
JPEG_QUALITY = 95


def build(source: str | os.PathLike, out: str | os.PathLike, count: int = 600, seed: int = 0) -> list[dict]:
    """Write the check set to ``out``; returns its manifest. Raises DatasetError for an unusable source."""
    data = load_dataset(source, NATIVE_SIZE)
    names, images, classes = data.names, data.images, data.classes
    areas = target_areas(classes)
    cutout_sources = np.flatnonzero((classes == TARGET_CLASS).sum(axis=(1, 2)) >= CUTOUT_MIN_PIXELS)
    cutouts = collect_targets(images[cutout_sources], classes[cutout_sources], CUTOUT_MIN_PIXELS)
    backgrounds = np.flatnonzero(areas < FAR_AREAS[0])
    if not cutouts or not len(backgrounds):
        raise DatasetError(f"{source!s}: needs images with a target of 400+ pixels and images without the target")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(backgrounds) for _ in range(-(-count // len(backgrounds)))])[:count]
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    (partial / "masks").mkdir()
    manifest = []
    for i, background in enumerate(order):
        image, class_map, cutout_index, area = _paste_far(images[background], classes[background], cutouts, rng)
        Image.fromarray(image).save(partial / "images" / f"far_{i:05d}.jpeg", quality=JPEG_QUALITY)
        Image.fromarray(classes_to_mask(class_map)).save(partial / "masks" / f"far_mask_{i:05d}.png")
        manifest.append(
            {"image": f"far_{i:05d}.jpeg", "background": names[background],
             "cutout_from": names[cutout_sources[cutout_index]], "target_area": area}
        )  # fmt: skip
    write_json(partial / "manifest.json", {"source": str(source), "seed": seed, "images": manifest})
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return manifest


def _paste_far(image: np.ndarray, class_map: np.ndarray, cutouts: list, rng: np.random.Generator):
    """Paste a random cutout at a far-target area; retries until the pasted mask's area is in the far buckets."""
    for _ in range(ATTEMPTS):
        index = int(rng.integers(len(cutouts)))
        cutout = cutouts[index]
        wanted = rng.uniform(*FAR_AREAS)  # the images are at the native size
        scale = min(1.0, float(np.sqrt(wanted / cutout.mask.sum())))
        pasted, pasted_classes = paste_scaled(image, class_map, cutout, scale, rng)
        area = float(target_areas(pasted_classes[np.newaxis])[0])
        if is_far(np.array([area]))[0]:
            return pasted, pasted_classes, index, area
    raise DatasetError(f"Could not paste a far target after {ATTEMPTS} attempts (cutouts too thin?)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.farset", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="images/masks folder (validation: never the training split)")
    parser.add_argument("out", type=Path, help="folder to write the check set to")
    parser.add_argument("--count", type=int, default=600, help="images to make (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1. Received: --count {args.count}")
    try:
        manifest = build(args.source, args.out, args.count, args.seed)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    areas = np.array([entry["target_area"] for entry in manifest])
    print(
        f"Wrote {len(manifest)} images to {args.out}: target area {areas.min():.0f}-{areas.max():.0f} native px "
        f"(median {np.median(areas):.0f}), {int((areas <= 50).sum())} of 4-50 px"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
