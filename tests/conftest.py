"""Shared fixtures: the data in ../shared when present, and tiny datasets made on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FOLLOWME_DATA = SHARED / "followme_data"
LEGACY_WEIGHTS = SHARED / "legacy_weights" / "udacity-2017-fcn" / "model_weights"
SHIPPED_WEIGHTS = ROOT / "weights" / "model_weights"


def require(path: Path, what: str) -> Path:
    """Skip the test with a clear reason when ``path`` is absent."""
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (../shared is absent on this machine)")
    return path


def write_pair(root: Path, index: int, image: np.ndarray, classes: np.ndarray) -> None:
    """Write one image/mask pair with names like the Udacity data's."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(root / "images" / f"run1cam1_{index:05d}.jpeg", quality=95)
    mask = (np.eye(3, dtype=np.uint8)[classes] * 255).astype(np.uint8)
    Image.fromarray(mask).save(root / "masks" / f"run1_mask_{index:05d}.png")


def make_dataset(root: Path, count: int, size: int = 32, seed: int = 0) -> Path:
    """A tiny dataset: grey ground with green people and, in every other image, a red target."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = np.full((size, size, 3), 110, np.uint8) + rng.integers(0, 20, (size, size, 3), dtype=np.uint8)
        classes = np.zeros((size, size), np.uint8)
        for cls, colour, present in ((1, (40, 200, 40), True), (2, (220, 20, 20), i % 2 == 0)):
            if present:
                h, w = rng.integers(4, size // 3, size=2)
                top, left = rng.integers(0, size - h), rng.integers(0, size - w)
                image[top : top + h, left : left + w] = colour
                classes[top : top + h, left : left + w] = cls
        write_pair(root, i, image, classes)
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data", 12)


@pytest.fixture(scope="session")
def synthetic_flight_path(tmp_path_factory) -> Path:
    """The tests' synthetic flight, written once per session."""
    from flight_helpers import write_synthetic_flight

    return write_synthetic_flight(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="session")
def synthetic_flight(synthetic_flight_path):
    from sim_bridge.flight import read_flight

    return read_flight(synthetic_flight_path)
