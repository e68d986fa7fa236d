"""The shipped model on real simulator images: the pipeline finds the target where the mask says it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from follower.pipeline import Settings, largest_blob, locate, target_mask
from models.imaging import TARGET_CLASS, mask_to_classes
from models.store import keras_path
from sim_bridge.geometry import Pose

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "model_weights"
VALIDATION = ROOT.parent / "shared" / "followme_data" / "validation"
MAX_CENTROID_ERROR_PX = 10.0

pytestmark = [
    pytest.mark.skipif(
        not keras_path(WEIGHTS).is_file(), reason=f"shipped weights absent: {keras_path(WEIGHTS)} not found"
    ),
    pytest.mark.skipif(not VALIDATION.is_dir(), reason=f"real images absent: {VALIDATION} not found"),
]


def biggest_targets(count: int) -> list[tuple[Path, np.ndarray]]:
    """The validation images (every fourth, for speed) whose masks show the most target pixels."""
    images = sorted((VALIDATION / "images").glob("*.jpeg"))[::4]
    masks = sorted((VALIDATION / "masks").glob("*.png"))[::4]
    classes = [mask_to_classes(np.asarray(Image.open(mask).convert("RGB"))) for mask in masks]
    order = np.argsort([-(c == TARGET_CLASS).sum() for c in classes])[:count]
    return [(images[i], classes[i] == TARGET_CLASS) for i in order]


def test_shipped_model_finds_the_target_near_the_mask_centroid():
    from follower.segmenter import Segmenter

    segmenter = Segmenter.load(WEIGHTS)
    settings = Settings()
    pose = Pose(0.0, 0.0, 10.0, 0.0, 30.0, 0.0)
    for image_path, truth in biggest_targets(3):
        rgb = np.asarray(Image.open(image_path).convert("RGB"))
        depth = np.full(rgb.shape[:2], 12.0, np.float32)
        _, detection = locate(target_mask(segmenter(rgb), settings.threshold), depth, pose, settings)
        assert detection is not None, f"no target found in {image_path.name}"
        expected = largest_blob(truth).centroid
        error = np.hypot(detection.centroid[0] - expected[0], detection.centroid[1] - expected[1])
        assert error < MAX_CENTROID_ERROR_PX, (image_path.name, detection.centroid, expected)
