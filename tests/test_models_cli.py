"""The evaluation, conversion and preprocessing commands, end to end on data the tests make."""

import json

import numpy as np
from conftest import make_dataset
from PIL import Image

from models import build_fcn, load, save
from models.evaluate import main as evaluate_main
from models.preprocess import main as preprocess_main
from models.preprocess import step_mask


def test_evaluate_scores_the_three_udacity_scenarios_and_writes_predictions(tmp_path, capsys):
    data = tmp_path / "sample_evaluation_data"
    for seed, name in enumerate(("following_images", "patrol_non_targ", "patrol_with_targ")):
        make_dataset(data / name, 3, size=32, seed=seed)
    save(build_fcn("e8,c8,d8", 32), tmp_path / "model", {"arch": "e8,c8,d8"})
    status = evaluate_main(
        [str(tmp_path / "model"), str(data), "--out", str(tmp_path / "pred"), "--json", str(tmp_path / "s.json")]
    )
    assert status == 0
    result = json.loads((tmp_path / "s.json").read_text())
    assert set(result["scenarios"]) == {"following_images", "patrol_non_targ", "patrol_with_targ"}
    assert result["final_score"] == result["final_iou"] * result["weight"]
    predictions = sorted((tmp_path / "pred" / "patrol_with_targ").glob("*.png"))
    assert len(predictions) == 3
    assert np.asarray(Image.open(predictions[0])).shape == (32, 32, 3)
    assert (tmp_path / "s.png").stat().st_size > 0
    assert "final_score" in capsys.readouterr().out


def test_evaluate_reports_a_missing_model_clearly(tmp_path, capsys):
    assert evaluate_main([str(tmp_path / "nothing"), str(tmp_path)]) == 2
    assert "No model at" in capsys.readouterr().err


def test_mask_rule_takes_the_argmin_of_the_camera_layers():
    white, black = np.full((1, 1, 3), 255, np.uint8), np.zeros((1, 1, 3), np.uint8)
    cam2 = np.concatenate([white, black, white], axis=1)  # other people in the middle pixel
    cam3 = np.concatenate([white, white, black], axis=1)  # the target in the last pixel
    cam4 = np.concatenate([black, white, white], axis=1)  # the environment where no one stands
    assert step_mask(cam2, cam3, cam4).tolist() == [[0, 1, 2]]


def test_preprocess_turns_recordings_into_pairs_and_names_incomplete_steps(tmp_path, capsys):
    run = tmp_path / "raw" / "run1"
    run.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for step in ("00001", "00002"):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(run / f"cam1_{step}.png")
        layers = np.full((3, 16, 16, 4), 255, np.uint8)
        layers[1, 4:8, 4:8, :3] = 0  # the target, dark in its own layer
        layers[2, ..., :3] = 0  # the environment everywhere else
        layers[2, 4:8, 4:8, :3] = 255
        for cam, layer in zip(("cam2", "cam3", "cam4"), layers):
            Image.fromarray(layer).save(run / f"{cam}_{step}.png")
    assert preprocess_main([str(tmp_path / "raw"), str(tmp_path / "out")]) == 0
    data = sorted((tmp_path / "out" / "images").iterdir())
    masks = sorted((tmp_path / "out" / "masks").iterdir())
    assert [p.name for p in data] == ["run1_cam1_00001.jpeg", "run1_cam1_00002.jpeg"]
    mask = np.asarray(Image.open(masks[0]))
    assert mask[5, 5].tolist() == [0, 0, 255] and mask[0, 0].tolist() == [255, 0, 0]
    (run / "cam3_00002.png").unlink()
    assert preprocess_main([str(tmp_path / "raw"), str(tmp_path / "out2")]) == 2
    assert "no cam3_00002.png" in capsys.readouterr().err


def test_convert_refuses_what_is_not_a_legacy_model(tmp_path, capsys):
    from models.convert import main as convert_main

    save(build_fcn("e8,c8,d8", 32), tmp_path / "model", {})
    assert convert_main([str(tmp_path / "model.keras"), str(tmp_path / "out")]) == 2
    assert "is not a legacy model" in capsys.readouterr().err
    assert load(tmp_path / "model")[1]["input_size"] == 32
