"""Far-target figures: size buckets in native pixels, on hand-made masks, through `models.evaluate`."""

import json

import numpy as np
import pytest
from conftest import make_dataset, write_pair

from models import build_fcn, save
from models.evaluate import EvalSet, size_figures
from models.evaluate import main as evaluate_main
from models.scoring import ScenarioScore, predicted_mask
from models.sizes import bucket_of, is_far, native_area, target_areas


@pytest.mark.parametrize(
    "area, bucket",
    [(0, None), (3, None), (4, "4-50"), (50, "4-50"), (51, "51-100"), (100, "51-100"), (101, "101-200"),
     (200, "101-200"), (201, "201-400"), (400, "201-400"), (401, "401+"), (60000, "401+")],
)  # fmt: skip
def test_buckets_include_both_ends(area, bucket):
    assert bucket_of(area) == bucket
    assert bool(is_far(np.array([area]))[0]) == (bucket in ("4-50", "51-100"))


def test_areas_are_counted_in_native_pixels_whatever_the_map_size():
    assert native_area(10, (128, 128)) == 40
    assert native_area(10, (256, 256, 3)) == 10
    classes = np.zeros((2, 64, 64), np.uint8)
    classes[0, :2, :3] = 2  # 6 pixels at 64 px are 96 at 256
    np.testing.assert_array_equal(target_areas(classes), [96, 0])


def one_hot_probabilities(classes: np.ndarray) -> np.ndarray:
    return np.eye(3, dtype=np.float32)[classes]


def test_size_figures_count_found_targets_per_bucket_and_false_positives():
    size = 32  # the model size; areas are native, given directly
    truths, predictions, areas = [], [], []
    for native, predicted in [(20, True), (30, False), (80, True), (500, True), (0, True), (0, False)]:
        truth = np.zeros((size, size), np.uint8)
        if native:
            truth[:2, :3] = 2
        prediction = np.zeros((size, size), np.uint8)
        if predicted:
            prediction[:2, :3] = 2 if native else 0
            prediction[10:12, 10:13] = 0 if native else 2  # a false positive where there is no target
        truths.append(np.eye(3, dtype=np.uint8)[truth])
        predictions.append(one_hot_probabilities(prediction))
        areas.append(native)
    eval_set = EvalSet("set", [str(i) for i in range(6)], np.zeros((6, size, size, 3), np.uint8),
                       np.stack(truths), np.array(areas, float))  # fmt: skip
    score = ScenarioScore()
    for truth, probabilities in zip(truths, predictions):
        score.add(truth, predicted_mask(probabilities))
    figures = size_figures([eval_set], {"set": (np.stack(predictions), score)})
    assert figures["buckets"]["4-50"] == {"images": 2, "found": 1, "iou": pytest.approx(0.5)}
    assert figures["buckets"]["51-100"]["found"] == 1 and figures["buckets"]["401+"]["images"] == 1
    assert figures["buckets"]["101-200"] == {"images": 0, "found": 0, "iou": None}
    assert figures["far"] == {"images": 3, "found": 2, "recall": pytest.approx(2 / 3), "missed": ["set/1"]}
    assert figures["no_target"] == {"images": 2, "false_pos": 1, "false_pos_images": ["set/4"]}


def test_evaluate_prints_and_writes_the_buckets_for_any_dataset(tmp_path, capsys):
    data = tmp_path / "data"
    for i, (rows, cols) in enumerate([(0, 0), (1, 5), (3, 6), (12, 12)]):  # 0, 5, 18 and 144 px at 32
        classes = np.zeros((32, 32), np.uint8)
        classes[:rows, :cols] = 2
        write_pair(data, i, np.full((32, 32, 3), 100, np.uint8), classes)
    save(build_fcn("e8,c8,d8", 32), tmp_path / "model", {"arch": "e8,c8,d8"})
    assert evaluate_main([str(tmp_path / "model"), str(data), "--json", str(tmp_path / "s.json")]) == 0
    sizes = json.loads((tmp_path / "s.json").read_text())["sizes"]
    # native areas: 5 x 64 = 320, 18 x 64 = 1152, 144 x 64 = 9216
    assert [sizes["buckets"][name]["images"] for name in ("4-50", "201-400", "401+")] == [0, 1, 2]
    assert sizes["no_target"]["images"] == 1 and sizes["far"]["images"] == 0
    out = capsys.readouterr().out
    assert "far targets (4-100 px): found 0 of 0" in out and "false positives in 1 images" in out
    assert (tmp_path / "s.png").stat().st_size > 0


def test_evaluate_scores_several_folders_in_one_table(tmp_path, capsys):
    for name, seed in (("first", 1), ("second", 2)):
        make_dataset(tmp_path / name / "validation", 4, seed=seed)  # both folders are named 'validation'
    save(build_fcn("e8,c8,d8", 32), tmp_path / "model", {"arch": "e8,c8,d8"})
    folders = [str(tmp_path / "first" / "validation"), str(tmp_path / "second" / "validation")]
    argv = [str(tmp_path / "model"), *folders, "--json", str(tmp_path / "s.json"), "--out", str(tmp_path / "pred")]
    assert evaluate_main(argv) == 0
    results = json.loads((tmp_path / "s.json").read_text())["datasets"]
    assert list(results) == folders and all(r["sizes"]["no_target"]["images"] == 2 for r in results.values())
    out = capsys.readouterr().out
    header, _, *rows = out[out.index("dataset ") :].splitlines()[:4]
    assert [cell.strip() for cell in header.split("|")][2:4] == ["final_score", "4-50"]
    assert [row.split("|")[0].strip() for row in rows] == folders
    assert rows[0].split("|")[-1].strip() == f"{results[folders[0]]['sizes']['no_target']['false_pos']}/2"
    assert len(list((tmp_path / "pred").glob("*/validation/*.png"))) == 8
    assert (tmp_path / "s.png").stat().st_size > 0
