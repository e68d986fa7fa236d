"""Dataset folder checks: every problem names the file."""

import numpy as np
import pytest
from conftest import make_dataset
from PIL import Image

from models.dataset import DatasetError, list_pairs, load_dataset


def test_loads_pairs_in_sorted_order_and_caches(tmp_path):
    root = make_dataset(tmp_path / "d", 4, size=32)
    data = load_dataset(root, 16, cache_dir=tmp_path / "cache")
    assert data.images.shape == (4, 16, 16, 3) and data.classes.shape == (4, 16, 16)
    assert set(np.unique(data.classes)) <= {0, 1, 2}
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    again = load_dataset(root, 16, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.classes, data.classes)


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(DatasetError, match="'.*nowhere' does not exist"):
        list_pairs(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no images/ folder"):
        list_pairs(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetError, match="holds no"):
        list_pairs(tmp_path)


def test_mismatched_counts(tmp_path):
    root = make_dataset(tmp_path / "d", 3)
    next((root / "masks").iterdir()).unlink()
    with pytest.raises(DatasetError, match="3 images but 2 masks"):
        list_pairs(root)


def test_unreadable_image_is_named(tmp_path):
    root = make_dataset(tmp_path / "d", 2)
    bad = sorted((root / "images").iterdir())[1]
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=bad.name):
        load_dataset(root, 16, cache_dir=tmp_path / "cache")


def test_mask_of_wrong_size_is_named(tmp_path):
    root = make_dataset(tmp_path / "d", 2)
    mask = sorted((root / "masks").iterdir())[0]
    Image.new("RGB", (10, 10)).save(mask)
    with pytest.raises(DatasetError, match=rf"{mask.name}.*10x10.*32x32"):
        load_dataset(root, 16, cache_dir=tmp_path / "cache")


def test_mask_with_an_alpha_channel_is_rejected(tmp_path):
    root = make_dataset(tmp_path / "d", 2)
    mask = sorted((root / "masks").iterdir())[0]
    Image.new("RGBA", (32, 32)).save(mask)
    with pytest.raises(DatasetError, match=rf"{mask.name}.*RGBA"):
        load_dataset(root, 16, cache_dir=tmp_path / "cache")
