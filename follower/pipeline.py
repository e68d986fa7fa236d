"""The per-frame pipeline, without I/O: decode → segment → locate → decide.

`process_frame` turns one ``sensor_frame`` payload into a `FrameResult` (it runs off the socket hub, in a
native thread); a `follower.tracking` tracker turns results into the simulator's events (PATROL ↔ FOLLOW).
The segmenter is any callable from an RGB uint8 image (H, W, 3) to the class probabilities (S, S, C) of the
network's softmax, or to the target's probabilities alone (S, S), so a test or a replay can stand in for the
network. Geometry conventions are those of `sim_bridge.geometry`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from follower.config import FollowerConfig
from models.imaging import PEOPLE_CLASS, TARGET_CLASS
from sim_bridge import protocol
from sim_bridge.geometry import Intrinsics, Pose, pixel_to_world, scale_pixel
from sim_bridge.protocol import SensorFrame

Segment = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Settings:
    """What the pipeline needs from the configuration; intrinsics left None come from the depth width."""

    threshold: float = FollowerConfig.threshold
    min_pixels: int = FollowerConfig.min_pixels
    max_image_side: int = FollowerConfig.max_image_side
    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None

    @classmethod
    def from_config(cls, config: FollowerConfig) -> Settings:
        """The pipeline's part of the configuration."""
        return config.part(cls)

    def intrinsics(self, width: int) -> Intrinsics:
        """The intrinsics for a depth image ``width`` pixels wide: the defaults, then any overrides."""
        default = Intrinsics.default(width)
        return Intrinsics(
            fx=default.fx if self.fx is None else self.fx,
            fy=default.fy if self.fy is None else self.fy,
            cx=default.cx if self.cx is None else self.cx,
            cy=default.cy if self.cy is None else self.cy,
        )


@dataclass(frozen=True)
class Blob:
    """The largest connected target region: its mask (S, S) bool, area and centroid (u, v), mask pixels."""

    mask: np.ndarray
    pixels: int
    centroid: tuple[float, float]


@dataclass(frozen=True)
class Detection:
    """A located target: blob area (camera frame pixels), centroid (u, v) in depth pixels, z-depth, world
    position."""

    pixels: int
    centroid: tuple[float, float]
    depth_m: float
    position: np.ndarray


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: the decoded frame, target pixel count, detection (or None), stage seconds, and
    the segmenter's output as it returned it (kept for the dashboard, see `class_map`)."""

    frame: SensorFrame
    target_pixels: int
    detection: Detection | None
    timings: dict[str, float] = field(default_factory=dict)
    segmentation: np.ndarray | None = None


def target_probabilities(segmentation: np.ndarray) -> np.ndarray:
    """The target's probabilities (S, S) from a segmenter's output, (S, S, C) or already (S, S)."""
    return segmentation[..., TARGET_CLASS] if segmentation.ndim == 3 else segmentation


def class_map(segmentation: np.ndarray, threshold: float) -> np.ndarray:
    """Classes (S, S) uint8 as the follower sees them: the target where its probability exceeds ``threshold``,
    elsewhere the most probable class (background or other people; only background for an (S, S) output)."""
    target = target_mask(target_probabilities(segmentation), threshold)
    classes = np.zeros(target.shape, np.uint8)
    if segmentation.ndim == 3:
        classes[np.argmax(segmentation, axis=-1) == PEOPLE_CLASS] = PEOPLE_CLASS
    classes[target] = TARGET_CLASS
    return classes


def target_mask(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask (S, S) of pixels whose target probability exceeds ``threshold``."""
    return np.asarray(probabilities) > threshold


def largest_blob(mask: np.ndarray) -> Blob | None:
    """The largest 8-connected region of ``mask``, or None when the mask is empty."""
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count < 2:
        return None
    label = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    u, v = centroids[label]
    return Blob(labels == label, int(stats[label, cv2.CC_STAT_AREA]), (float(u), float(v)))


def blob_depth(blob_mask: np.ndarray, depth_m: np.ndarray) -> float:
    """Median depth (m) under a blob, the mask scaled to the depth image; NaN when no pixel has a reading."""
    height, width = depth_m.shape
    if blob_mask.shape != depth_m.shape:
        blob_mask = cv2.resize(blob_mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    values = depth_m[blob_mask.astype(bool)]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def locate(
    mask: np.ndarray,
    depth_m: np.ndarray,
    camera_pose: Pose,
    settings: Settings,
    frame_size: tuple[int, int] | None = None,
) -> tuple[int, Detection | None]:
    """(target pixel count, detection): the largest blob back-projected at its median depth, or None.

    Pixel counts are in the camera frame's native pixels, ``frame_size`` (width, height), whatever the size of
    the network's ``mask`` (default: the mask's own size), so ``settings.min_pixels`` means the same for every
    model. The target is present when it covers more than ``settings.min_pixels`` of them; a present target
    whose blob has no depth reading is not located.
    """
    per_mask_pixel = 1.0 if frame_size is None else frame_size[0] * frame_size[1] / mask.size
    target_pixels = round(np.count_nonzero(mask) * per_mask_pixel)
    if target_pixels <= settings.min_pixels:
        return target_pixels, None
    blob = largest_blob(mask)
    if blob is None:
        return target_pixels, None
    depth = blob_depth(blob.mask, depth_m)
    if not np.isfinite(depth):
        return target_pixels, None
    height, width = depth_m.shape
    centroid = scale_pixel(blob.centroid, (mask.shape[1], mask.shape[0]), (width, height))
    position = pixel_to_world(centroid, depth, settings.intrinsics(width), camera_pose)
    return target_pixels, Detection(round(blob.pixels * per_mask_pixel), centroid, depth, position)


def process_frame(message: Any, segment: Segment, settings: Settings) -> FrameResult:
    """Decode, segment and locate one ``sensor_frame`` payload; raises `sim_bridge.protocol.ProtocolError`."""
    start = time.perf_counter()
    frame = protocol.parse_sensor_frame(message, settings.max_image_side)
    decoded = time.perf_counter()
    segmentation = segment(frame.rgb)
    segmented = time.perf_counter()
    mask = target_mask(target_probabilities(segmentation), settings.threshold)
    frame_size = (frame.rgb.shape[1], frame.rgb.shape[0])
    target_pixels, detection = locate(mask, frame.depth_m, frame.gimbal_pose, settings, frame_size)
    located = time.perf_counter()
    timings = {"decode": decoded - start, "segment": segmented - decoded, "locate": located - segmented}
    return FrameResult(frame, target_pixels, detection, timings, segmentation)
