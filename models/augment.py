"""Training augmentations on uint8 images (S, S, 3) and class maps (S, S), each switchable by name.

- ``shift``: the original project's shift-and-pad: a random translation, the uncovered border black in the
  image and background in the mask.
- ``zoom``: scale the whole frame by a factor from ``ZOOM_RANGE``: out (every person smaller, the border
  mirrored) as often as in (a crop). Far targets become as common as the patrol flights make them.
- ``flip``: horizontal mirror.
- ``color``: brightness, contrast and per-channel gain jitter (small, so the red-dressed target stays red).
- ``paste``: target copy-paste: the target is cut out of another training image by its mask, scaled down to a
  height drawn log-uniformly from ``PASTE_HEIGHTS`` (fractions of the frame: 4 to 48 pixels at 256) and pasted
  at a random place into an image without the target, with the mask updated. It makes the small, far-away
  target that every published model misses most.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.imaging import TARGET_CLASS

AUGMENTATIONS = ("shift", "zoom", "flip", "color", "paste")
PASTE_HEIGHTS = (4 / 256, 48 / 256)
ZOOM_RANGE = (0.5, 1.5)


def parse_augmentations(names: list[str] | str) -> tuple[str, ...]:
    """Normalise ``names`` ("all", "none", or a list/comma string of AUGMENTATIONS); raises ValueError."""
    if isinstance(names, str):
        names = names.split(",")
    names = [n.strip().lower() for n in names if n.strip()]
    if names in (["all"], []):
        return AUGMENTATIONS if names else ()
    if names == ["none"]:
        return ()
    unknown = sorted(set(names) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"Unknown augmentation(s) {unknown}; choose from {AUGMENTATIONS}, all or none")
    return tuple(n for n in AUGMENTATIONS if n in names)


@dataclass(frozen=True)
class TargetCutout:
    """A target cut out of a training image: its pixels and mask within the bounding box."""

    pixels: np.ndarray
    mask: np.ndarray


CUTOUT_MIN_PIXELS = 400  # targets smaller than this do not scale down cleanly


def collect_targets(images: np.ndarray, classes: np.ndarray, min_pixels: int = CUTOUT_MIN_PIXELS) -> list[TargetCutout]:
    """Cut-outs of every target of at least ``min_pixels`` pixels, large enough to scale down cleanly."""
    cutouts = []
    for image, class_map in zip(images, classes):
        target = class_map == TARGET_CLASS
        if target.sum() < min_pixels:
            continue
        rows, cols = np.nonzero(target.any(1))[0], np.nonzero(target.any(0))[0]
        box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
        cutouts.append(TargetCutout(image[box].copy(), target[box].copy()))
    return cutouts


def shift(image: np.ndarray, classes: np.ndarray, rng: np.random.Generator, max_fraction: float = 0.25):
    """Translate by up to ``max_fraction`` of the size each way; the border becomes black / background."""
    size = image.shape[0]
    dy, dx = rng.integers(-int(size * max_fraction), int(size * max_fraction) + 1, size=2)
    out_image, out_classes = np.zeros_like(image), np.zeros_like(classes)
    src = slice(max(0, -dy), size - max(0, dy)), slice(max(0, -dx), size - max(0, dx))
    dst = slice(max(0, dy), size - max(0, -dy)), slice(max(0, dx), size - max(0, -dx))
    out_image[dst], out_classes[dst] = image[src], classes[src]
    return out_image, out_classes


def zoom(image: np.ndarray, classes: np.ndarray, rng: np.random.Generator, scales: tuple[float, float] = ZOOM_RANGE):
    """Scale by a factor drawn log-uniformly from ``scales`` about a random point; the size stays the same.

    Below 1 the frame shrinks into the middle of a mirrored border; above 1 a random crop is enlarged.
    """
    size = image.shape[0]
    factor = float(np.exp(rng.uniform(np.log(scales[0]), np.log(scales[1]))))
    scaled = max(1, round(size * factor))
    if scaled < size:
        image = cv2.resize(image, (scaled, scaled), interpolation=cv2.INTER_AREA)
        classes = cv2.resize(classes, (scaled, scaled), interpolation=cv2.INTER_NEAREST)
        top, left = (int(v) for v in rng.integers(0, size - scaled + 1, size=2))
        pads = (top, size - scaled - top, left, size - scaled - left)
        return (cv2.copyMakeBorder(image, *pads, cv2.BORDER_REFLECT_101),
                cv2.copyMakeBorder(classes, *pads, cv2.BORDER_REFLECT_101))  # fmt: skip
    crop = min(size, max(1, round(size / factor)))  # a factor just below 1 can round to size + 1 here
    top, left = (int(v) for v in rng.integers(0, size - crop + 1, size=2))
    box = slice(top, top + crop), slice(left, left + crop)
    return (cv2.resize(image[box], (size, size), interpolation=cv2.INTER_LINEAR),
            cv2.resize(classes[box], (size, size), interpolation=cv2.INTER_NEAREST))  # fmt: skip


def flip(image: np.ndarray, classes: np.ndarray):
    """Mirror left-right."""
    return image[:, ::-1], classes[:, ::-1]


def color(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness ±20 %, contrast ±20 %, per-channel gain ±8 %."""
    pixels = image.astype(np.float32)
    mean = pixels.mean()
    pixels = (pixels - mean) * rng.uniform(0.8, 1.2) + mean * rng.uniform(0.8, 1.2)
    pixels *= rng.uniform(0.92, 1.08, size=3)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def paste_target(
    image: np.ndarray,
    classes: np.ndarray,
    cutout: TargetCutout,
    rng: np.random.Generator,
    heights: tuple[float, float] = PASTE_HEIGHTS,
):
    """Paste ``cutout`` at a random place, scaled to a height drawn log-uniformly from ``heights`` (fractions of
    the image size); returns copies."""
    height = image.shape[0] * float(np.exp(rng.uniform(np.log(heights[0]), np.log(heights[1]))))
    return paste_scaled(image, classes, cutout, min(1.0, height / cutout.mask.shape[0]), rng)


def paste_scaled(image: np.ndarray, classes: np.ndarray, cutout: TargetCutout, scale: float, rng: np.random.Generator):
    """Paste ``cutout`` scaled by ``scale`` at a random place, blended by its mask; returns copies (the inputs
    when it does not fit)."""
    h = max(2, round(cutout.mask.shape[0] * scale))
    w = max(1, round(cutout.mask.shape[1] * scale))
    size = image.shape[0]
    if h >= size or w >= size:
        return image, classes
    pixels = cv2.resize(cutout.pixels, (w, h), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(cutout.mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    box = slice(top, top + h), slice(left, left + w)
    image, classes = image.copy(), classes.copy()
    blended = alpha[..., None] * pixels + (1 - alpha[..., None]) * image[box]
    image[box] = np.clip(blended, 0, 255).astype(np.uint8)
    classes[box] = np.where(alpha > 0.5, TARGET_CLASS, classes[box])
    return image, classes


@dataclass
class Augmenter:
    """Applies the enabled augmentations to one sample with the given random generator."""

    enabled: tuple[str, ...]
    cutouts: list[TargetCutout]
    paste_probability: float = 0.5
    shift_probability: float = 0.5
    zoom_probability: float = 0.5

    def __call__(self, image: np.ndarray, classes: np.ndarray, rng: np.random.Generator):
        wants_paste = "paste" in self.enabled and self.cutouts and rng.random() < self.paste_probability
        if wants_paste and not (classes == TARGET_CLASS).any():
            cutout = self.cutouts[int(rng.integers(len(self.cutouts)))]
            image, classes = paste_target(image, classes, cutout, rng)
        if "zoom" in self.enabled and rng.random() < self.zoom_probability:
            image, classes = zoom(image, classes, rng)
        if "shift" in self.enabled and rng.random() < self.shift_probability:
            image, classes = shift(image, classes, rng)
        if "flip" in self.enabled and rng.random() < 0.5:
            image, classes = flip(image, classes)
        if "color" in self.enabled:
            image = color(image, rng)
        return image, classes
