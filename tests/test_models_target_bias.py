"""Shifting the target logit: fewer or more target pixels, nothing else touched, the command and its card."""

import json

import numpy as np
import pytest
from conftest import make_dataset
from test_models_prune import images, randomized

from models import load, save
from models.evaluate import main as evaluate_main
from models.imaging import TARGET_CLASS
from models.target_bias import main, shift_target_bias


def target_pixels(model, x) -> int:
    return int((model.predict_on_batch(x).argmax(-1) == TARGET_CLASS).sum())


def test_a_negative_shift_marks_fewer_target_pixels_and_a_positive_one_more():
    model, x = randomized("e8,e8,c8,d8,d4", 16), images(8, 16)
    kernel, bias = model.get_layer("classes").get_weights()
    model.get_layer("classes").set_weights([kernel * 0.01, bias * 0])  # the three classes about as likely
    before = target_pixels(model, x)
    shift_target_bias(model, -2.0)
    fewer = target_pixels(model, x)
    shift_target_bias(model, 4.0)
    assert fewer < before < target_pixels(model, x)


def test_only_the_target_bias_changes():
    model = randomized("e8,e8,c8,d8,d4", 16)
    weights = [w.copy() for w in model.get_weights()]
    shift_target_bias(model, -0.5)
    changed = [i for i, (a, b) in enumerate(zip(weights, model.get_weights())) if not np.array_equal(a, b)]
    assert len(changed) == 1
    delta = model.get_weights()[changed[0]] - weights[changed[0]]
    np.testing.assert_allclose(delta, [0.0, 0.0, -0.5])


def test_the_command_saves_the_shift_and_drops_the_sources_stale_figures(tmp_path, capsys):
    source = randomized("e8,e8,c8,d8,d4", 16)
    save(source, tmp_path / "source", {"arch": "e8,e8,c8,d8,d4", "input_size": 16, "validation": {"final_score": 0.6}})
    assert main([str(tmp_path / "source"), "-0.5", str(tmp_path / "once")]) == 0
    assert main([str(tmp_path / "once"), "-0.25", str(tmp_path / "twice")]) == 0
    model, card = load(tmp_path / "twice")
    assert card["target_bias_shift"] == -0.75 and card["shifted_from"] == str(tmp_path / "once")
    assert "validation" not in card
    x = images(4, 16)
    assert target_pixels(model, x) <= target_pixels(source, x)
    assert main([str(tmp_path / "source"), "nan", str(tmp_path / "bad")]) == 2
    assert "finite" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), "-0.5", str(tmp_path / "bad")]) == 2


def test_evaluate_scores_each_shift_as_the_saved_shifted_model_scores(tmp_path, capsys):
    source = randomized("e8,e8,c8,d8,d4", 16)
    kernel, bias = source.get_layer("classes").get_weights()
    source.get_layer("classes").set_weights([kernel * 0.01, bias * 0])  # shifts move many pixels
    save(source, tmp_path / "source", {"arch": "e8,e8,c8,d8,d4", "input_size": 16})
    assert main([str(tmp_path / "source"), "-0.5", str(tmp_path / "shifted")]) == 0
    data = make_dataset(tmp_path / "data", 6, size=16)

    def scores(model: str, *options: str) -> dict:
        assert evaluate_main([str(tmp_path / model), str(data), "--json", str(tmp_path / "s.json"), *options]) == 0
        return json.loads((tmp_path / "s.json").read_text())

    swept = scores("source", "--target-bias", "2", "-0.5", "0")["target_bias"]
    assert swept["-0.5"] == scores("shifted") and swept["+0"] == scores("source")
    false_positives = [swept[shift]["sizes"]["no_target"]["false_pos"] for shift in ("+0", "+2")]
    assert false_positives == [0, 3]  # +2: the target everywhere
    assert "data -0.5 |" in capsys.readouterr().out  # the table: a row per dataset and shift
    with pytest.raises(SystemExit):
        evaluate_main([str(tmp_path / "source"), str(data), "--target-bias", "-1", "nan"])
    assert "expected a finite number" in capsys.readouterr().err
