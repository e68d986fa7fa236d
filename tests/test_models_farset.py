"""The far-target check set: pasted targets of 4-100 native pixels, reproducible, from the source alone."""

import json

import numpy as np
import pytest
from conftest import write_pair

from models.dataset import DatasetError, load_dataset
from models.farset import build, main
from models.sizes import is_far, target_areas


def make_source(root, with_target=3, without=4):
    rng = np.random.default_rng(0)
    for i in range(with_target + without):
        image = rng.integers(60, 160, (256, 256, 3), dtype=np.uint8)
        classes = np.zeros((256, 256), np.uint8)
        if i < with_target:
            image[100:160, 120:140] = (210, 30, 30)
            classes[100:160, 120:140] = 2
        write_pair(root, i, image, classes)
    return root


def test_every_image_gets_one_far_target_on_a_background_without_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FOLLOWME_CACHE", str(tmp_path / "cache"))
    source = make_source(tmp_path / "val")
    assert main([str(source), str(tmp_path / "far"), "--count", "6", "--seed", "3"]) == 0
    data = load_dataset(tmp_path / "far", 256)
    areas = target_areas(data.classes)
    assert len(data) == 6 and is_far(areas).all()
    manifest = json.loads((tmp_path / "far" / "manifest.json").read_text())
    assert [entry["target_area"] for entry in manifest["images"]] == pytest.approx(areas.tolist())
    backgrounds = [entry["background"] for entry in manifest["images"]]
    assert len(set(backgrounds[:4])) == 4 and all(name.endswith(("3.jpeg", "4.jpeg", "5.jpeg", "6.jpeg"))
                                                  for name in backgrounds)  # fmt: skip
    assert "Wrote 6 images" in capsys.readouterr().out
    assert not (tmp_path / "far.partial").exists()


def test_the_same_seed_gives_the_same_set(tmp_path):
    source = make_source(tmp_path / "val")
    first, second, other = (build(source, tmp_path / name, count=4, seed=seed) for name, seed in
                            (("a", 1), ("b", 1), ("c", 2)))  # fmt: skip
    assert first == second and first != other
    for name in ("images/far_00002.jpeg", "masks/far_mask_00002.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_source_without_large_targets_is_refused(tmp_path, capsys):
    source = make_source(tmp_path / "val", with_target=0)
    with pytest.raises(DatasetError, match="400\\+ pixels"):
        build(source, tmp_path / "far", count=2)
    assert main([str(source), str(tmp_path / "far")]) == 2
    assert "error:" in capsys.readouterr().err
