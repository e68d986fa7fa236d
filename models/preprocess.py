"""Turn the simulator's DL-training recordings into image/mask pairs.

    python -m models.preprocess RAW_DIR OUT_DIR

Each recorded step of a run folder holds ``cam1_NNNNN.png`` (the RGB camera), ``cam2_`` (other people),
``cam3_`` (the target) and ``cam4_`` (environment). As the original preprocessing did, each pixel's class is
the argmin over the first channel of (cam4 - 1, cam2, cam3): 0 background, 1 other people, 2 the target.
Writes ``OUT_DIR/images/<run>_cam1_NNNNN.jpeg`` and ``OUT_DIR/masks/<run>_mask_NNNNN.png`` (RGB, one channel at
255 per pixel), which pair in sorted order. RAW_DIR is a run folder or a folder of run folders.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from models.dataset import DatasetError, open_rgb
from models.imaging import classes_to_mask

_STEP = re.compile(r"^cam1_(\d+)\.png$")
JPEG_QUALITY = 95


def run_folders(raw_dir: Path) -> list[Path]:
    """``raw_dir`` and its subfolders that hold ``cam1_*.png`` steps, sorted."""
    folders = [raw_dir, *sorted(p for p in raw_dir.iterdir() if p.is_dir())] if raw_dir.is_dir() else []
    found = [folder for folder in folders if any(folder.glob("cam1_*.png"))]
    if not found:
        raise DatasetError(f"No recorded steps (cam1_*.png) in {str(raw_dir)!r} or its subfolders")
    return found


def step_mask(cam2: np.ndarray, cam3: np.ndarray, cam4: np.ndarray) -> np.ndarray:
    """The class map of one step: argmin over first channels of (cam4 - 1, cam2, cam3), in int16."""
    stacked = np.stack([cam4[..., 0].astype(np.int16) - 1, cam2[..., 0], cam3[..., 0]], axis=-1)
    return np.argmin(stacked, axis=-1).astype(np.uint8)


def convert_run(folder: Path, out_dir: Path, prefix: str) -> int:
    """Write the pairs of one run folder; returns how many. Raises DatasetError for an incomplete step."""
    count = 0
    for cam1 in sorted(folder.glob("cam1_*.png")):
        match = _STEP.match(cam1.name)
        if not match:
            continue
        step = match[1]
        layers = []
        for cam in ("cam2", "cam3", "cam4"):
            path = folder / f"{cam}_{step}.png"
            if not path.is_file():
                raise DatasetError(f"Step {step} of {str(folder)!r} has {cam1.name} but no {path.name}")
            layers.append(open_rgb(path, "Mask layer", ("RGB", "RGBA")))
        image = open_rgb(cam1, "Image", ("RGB", "RGBA"))
        if any(layer.shape[:2] != image.shape[:2] for layer in layers):
            raise DatasetError(f"Step {step} of {str(folder)!r}: camera images differ in size")
        Image.fromarray(image).save(out_dir / "images" / f"{prefix}cam1_{step}.jpeg", quality=JPEG_QUALITY)
        Image.fromarray(classes_to_mask(step_mask(*layers))).save(out_dir / "masks" / f"{prefix}mask_{step}.png")
        count += 1
    return count


def preprocess(raw_dir: Path, out_dir: Path) -> int:
    """Convert every run under ``raw_dir`` into ``out_dir``; returns the number of pairs written."""
    folders = run_folders(raw_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    total = 0
    for folder in folders:
        written = convert_run(folder, out_dir, f"{folder.name}_")
        print(f"{folder}: {written} pairs")
        total += written
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.preprocess", description=__doc__.split("\n")[0])
    parser.add_argument("raw_dir", type=Path, help="a recorded run folder, or a folder of them")
    parser.add_argument("out_dir", type=Path, help="dataset folder to write (images/, masks/)")
    args = parser.parse_args(argv)
    try:
        total = preprocess(args.raw_dir, args.out_dir)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {total} image/mask pairs to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
