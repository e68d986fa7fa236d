"""Training augmentations on uint8 images (S, S, 3) and class maps (S, S), each switchable by name.

- ``shift``: the original project's shift-and-pad: a random translation, the uncovered border black in the
  image and background in the mask.
- ``flip``: horizontal mirror.
- ``color``: brightness, contrast and per-channel gain jitter (small, so the red-dressed target stays red).
- ``paste``: target copy-paste: the target is cut out of another training image by its mask, scaled down and
  pasted at a random place into an image without the target, with the mask updated. It makes the small,
  far-away target that every published model misses most.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.imaging import TARGET_CLASS

AUGMENTATIONS = ("shift", "flip", "color", "paste")
DEFAULT_AUGMENTATIONS = AUGMENTATIONS


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


def collect_targets(images: np.ndarray, classes: np.ndarray, min_pixels: int = 400) -> list[TargetCutout]:
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
    heights: tuple[int, int] = (6, 40),
):
    """Paste ``cutout`` scaled to a height drawn from ``heights`` pixels at a random place; returns copies."""
    height = int(rng.integers(heights[0], heights[1] + 1))
    scale = min(1.0, height / cutout.mask.shape[0])
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

    def __call__(self, image: np.ndarray, classes: np.ndarray, rng: np.random.Generator):
        wants_paste = "paste" in self.enabled and self.cutouts and rng.random() < self.paste_probability
        if wants_paste and not (classes == TARGET_CLASS).any():
            cutout = self.cutouts[int(rng.integers(len(self.cutouts)))]
            image, classes = paste_target(image, classes, cutout, rng)
        if "shift" in self.enabled and rng.random() < self.shift_probability:
            image, classes = shift(image, classes, rng)
        if "flip" in self.enabled and rng.random() < 0.5:
            image, classes = flip(image, classes)
        if "color" in self.enabled:
            image = color(image, rng)
        return image, classes
