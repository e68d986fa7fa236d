"""The shipped model replaying a short flight made of real simulator images from ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from follower.pipeline import Settings, largest_blob
from follower.replay import replay
from follower.tracking import FrameTracker
from models.imaging import TARGET_CLASS, mask_to_classes
from models.store import keras_path
from sim_bridge.flight import FlightWriter, Truth, read_flight
from sim_bridge.geometry import Intrinsics, Pose, pixel_to_world
from sim_bridge.protocol import build_sensor_frame

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "model_weights"
VALIDATION = ROOT.parent / "shared" / "followme_data" / "validation"
DEPTH_M = 12.0
POSE = Pose(0.0, 0.0, 10.0, 0.0, 30.0, 0.0)
MAX_MEDIAN_ERROR_M = 0.5  # about 10 pixels at 12 m with fx = 256

pytestmark = [
    pytest.mark.skipif(
        not keras_path(WEIGHTS).is_file(), reason=f"shipped weights absent: {keras_path(WEIGHTS)} not found"
    ),
    pytest.mark.skipif(not VALIDATION.is_dir(), reason=f"real images absent: {VALIDATION} not found (../shared)"),
]


def real_image_flight(path: Path, count: int = 8) -> Path:
    """Validation images with the most target pixels, at a flat depth; truth from their masks."""
    images = sorted((VALIDATION / "images").glob("*.jpeg"))[::8]
    masks = sorted((VALIDATION / "masks").glob("*.png"))[::8]
    classes = [mask_to_classes(np.asarray(Image.open(mask).convert("RGB"))) for mask in masks]
    order = np.argsort([-(c == TARGET_CLASS).sum() for c in classes])[:count]
    intrinsics = Intrinsics.default(256)
    with FlightWriter(path, "real images", intrinsics) as writer:
        for i, index in enumerate(order):
            rgb = np.asarray(Image.open(images[index]).convert("RGB"))
            target = classes[index] == TARGET_CLASS
            position = pixel_to_world(largest_blob(target).centroid, DEPTH_M, intrinsics, POSE)
            depth = np.full(rgb.shape[:2], DEPTH_M)
            data = build_sensor_frame(1000.0 + i / 5, POSE, POSE, rgb, depth)
            writer.write_frame(1000.0 + i / 5, data, Truth(position, True, classes[index]))
    return path


def test_shipped_model_follows_a_real_image_flight(tmp_path):
    from follower.segmenter import Segmenter

    flight = read_flight(real_image_flight(tmp_path / "real.flight.jsonl.gz"))
    # frame by frame: the images jump between runs, so this checks the model and the geometry, not a tracker
    summary = replay(flight, Segmenter.load(WEIGHTS), Settings(), FrameTracker())
    assert summary["transitions"][0] == {"frame": 0, "event": "found"}
    assert len(summary["visible_not_reported"]) <= 1, summary
    assert summary["loc_err_m"]["median"] < MAX_MEDIAN_ERROR_M, summary
