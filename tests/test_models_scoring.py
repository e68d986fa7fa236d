"""The Udacity scorer on hand-made masks."""

import numpy as np
import pytest

from models.scoring import ScenarioScore, final_result, iou, predicted_mask, truth_mask


def masks(size=8, target=()):
    """A binary (H, W, 3) mask: background everywhere except the ``target`` pixels (row, col)."""
    mask = np.zeros((size, size, 3), np.uint8)
    mask[..., 0] = 1
    for r, c in target:
        mask[r, c] = (0, 0, 1)
    return mask


def test_iou_is_zero_for_an_empty_union_and_exact_otherwise():
    empty = np.zeros((4, 4), np.uint8)
    assert iou(empty, empty) == 0.0
    a, b = empty.copy(), empty.copy()
    a[0, :2] = 1
    b[0, 1:3] = 1
    assert iou(a, b) == pytest.approx(1 / 3)


def test_prediction_threshold_goes_through_uint8_like_the_png():
    probs = np.zeros((1, 3, 3), np.float32)
    probs[0, 0] = (0.5, 0.5, 0.0)  # 127 -> not a class
    probs[0, 1] = (0.49, 0.0, 0.51)  # 130 -> target
    probs[0, 2] = (0.0, 0.0, 1.0)
    pred = predicted_mask(probs)
    assert pred[0, 0].tolist() == [0, 0, 0]
    assert pred[0, 1].tolist() == [0, 0, 1]
    assert pred[0, 2].tolist() == [0, 0, 1]


def test_presence_needs_more_than_three_pixels():
    three = [(0, 0), (0, 1), (0, 2)]
    four = [*three, (0, 3)]
    score = ScenarioScore()
    score.add(masks(target=four), masks(target=four))  # TP
    score.add(masks(target=four), masks(target=three))  # FN: 3 predicted pixels are not a detection
    score.add(masks(target=three), masks(target=four))  # FP: 3 true pixels are not a target
    score.add(masks(target=three), masks(target=three))  # nothing counted
    assert (score.true_pos, score.false_neg, score.false_pos) == (1, 1, 1)
    assert score.images_with_target == 2
    assert score.per_image_iou == [1.0, pytest.approx(0.75), pytest.approx(0.75), 1.0]


def test_truth_is_clipped_and_resized_bilinearly_to_the_prediction_size():
    truth = np.zeros((4, 4, 3), np.uint8)
    truth[..., 0] = 255
    truth[:2, :2] = (0, 0, 255)
    small = truth_mask(truth, (2, 2))
    assert small.shape == (2, 2, 3)
    assert small[0, 0].tolist() == [0, 0, 1]
    assert small[1, 1].tolist() == [1, 0, 0]


def test_single_folder_scores_iou_over_images_with_the_target_only():
    target = [(1, 1), (1, 2), (2, 1), (2, 2)]
    score = ScenarioScore()
    score.add(masks(target=target), masks(target=target))  # IoU 1
    score.add(masks(), masks(target=target))  # FP, IoU 0, not in final IoU
    result = final_result({"validation": score})
    assert result["final_iou"] == 1.0
    assert result["weight"] == pytest.approx(0.5)
    assert result["final_score"] == pytest.approx(0.5)
    assert result["scenarios"]["validation"]["iou"] == pytest.approx(0.5)


def test_three_scenarios_average_following_and_patrol_with_target():
    target = [(1, 1), (1, 2), (2, 1), (2, 2)]
    following, non_target, with_target = ScenarioScore(), ScenarioScore(), ScenarioScore()
    following.add(masks(target=target), masks(target=target))
    non_target.add(masks(), masks(target=target))
    with_target.add(masks(target=target), masks())
    with_target.add(masks(target=target), masks(target=target))
    result = final_result(
        {"following_images": following, "patrol_non_targ": non_target, "patrol_with_targ": with_target}
    )
    assert result["final_iou"] == pytest.approx((1.0 + 0.5) / 2)
    assert result["weight"] == pytest.approx(2 / 4)
    assert result["final_score"] == pytest.approx(0.375)
