"""Target sizes: the buckets far-target figures are reported in, by the truth's target area at the frame's native
256x256, whatever size a model or a dataset works at.

Patrol starts with the target far away, a few dozen pixels of the frame: the buckets separate that case from
the near target of following, which a single overall score hides.
"""

from __future__ import annotations

import numpy as np

from models.imaging import TARGET_CLASS

NATIVE_SIZE = 256
# (name, smallest, largest) native pixels, both inclusive; below 4 pixels the Udacity score has no target.
SIZE_BUCKETS = (("4-50", 4, 50), ("51-100", 51, 100), ("101-200", 101, 200), ("201-400", 201, 400),
                ("401+", 401, None))  # fmt: skip
FAR_BUCKETS = ("4-50", "51-100")


def native_area(pixels: np.ndarray | np.integer | int, shape: tuple[int, ...]) -> np.ndarray:
    """Areas counted on a map of ``shape`` (H, W, ...), in pixels of the native 256x256 frame."""
    return np.asarray(pixels, dtype=np.float64) * NATIVE_SIZE**2 / (shape[0] * shape[1])


def target_areas(classes: np.ndarray) -> np.ndarray:
    """Native-pixel target areas of class maps (N, H, W)."""
    return native_area((classes == TARGET_CLASS).sum(axis=(1, 2)), classes.shape[1:])


def bucket_of(area: float) -> str | None:
    """The bucket name of a native-pixel target area, None below the smallest bucket (no target)."""
    area = round(float(area))
    for name, low, high in SIZE_BUCKETS:
        if area >= low and (high is None or area <= high):
            return name
    return None


def is_far(areas: np.ndarray) -> np.ndarray:
    """Which native-pixel areas fall in the far buckets (4 to 100 pixels)."""
    return np.array([bucket_of(area) in FAR_BUCKETS for area in np.ravel(areas)], dtype=bool)
