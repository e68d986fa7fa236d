"""The training loss takes the truth as class indices (what training batches carry) or one-hot, alike."""

import numpy as np
import pytest

from models.losses import SegmentationLoss


@pytest.mark.parametrize("dice", [0.0, 1.0])
def test_class_indices_give_the_one_hot_loss(dice):
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3, (2, 8, 8)).astype(np.uint8)
    logits = rng.normal(size=(2, 8, 8, 3))
    probabilities = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    loss = SegmentationLoss((1.0, 1.0, 2.0), dice)
    one_hot = np.eye(3, dtype=np.float32)[classes]
    np.testing.assert_allclose(
        np.asarray(loss(classes, probabilities)), np.asarray(loss(one_hot, probabilities)), rtol=1e-6
    )
    assert float(np.asarray(loss(classes, probabilities))) > 0


def test_the_dice_per_image_weighs_a_missed_far_target_as_much_as_a_found_near_one():
    classes = np.zeros((3, 32, 32), np.uint8)
    classes[0, 4:28, 4:28] = 2  # a near target of 576 pixels, found
    classes[1, 10:13, 10:12] = 2  # a far one of 6 pixels, missed; image 2 has no target
    probabilities = np.eye(3, dtype=np.float32)[classes]
    probabilities[1, 10:13, 10:12] = (1.0, 0.0, 0.0)
    cross_entropy = np.asarray(SegmentationLoss((1.0, 1.0, 1.0), 0.0)(classes, probabilities))
    batch = np.asarray(SegmentationLoss((1.0, 1.0, 1.0), 1.0)(classes, probabilities)) - cross_entropy
    per_image_loss = SegmentationLoss((1.0, 1.0, 1.0), 1.0, dice_per_image=True)
    per_image = np.asarray(per_image_loss(classes, probabilities)) - cross_entropy
    assert batch < 0.01  # (2 x 576 + 1) / (582 + 576 + 1): the near target's pixels outweigh the far one's
    expected = (0.0 + (1 - 1 / 7) + 0.0) / 3  # 1 - Dice per image: found, missed, none without the target
    np.testing.assert_allclose(per_image, expected, rtol=1e-3)


def test_the_dice_per_image_with_empty_images_scores_a_false_positive():
    classes = np.zeros((2, 32, 32), np.uint8)  # no target in either image
    probabilities = np.eye(3, dtype=np.float32)[classes]
    probabilities[1, 0:4, 0:5] = (0.0, 0.0, 1.0)  # 20 pixels of phantom target in the second
    loss = SegmentationLoss((1.0, 1.0, 1.0), 1.0, dice_per_image=True, dice_empty=True)
    without = SegmentationLoss((1.0, 1.0, 1.0), 1.0, dice_per_image=True)
    dice_terms = np.asarray(loss(classes, probabilities)) - np.asarray(without(classes, probabilities))
    np.testing.assert_allclose(dice_terms, (0.0 + (1 - 1 / 21)) / 2, rtol=1e-3)  # clean: ~0; phantom: 20 / 21


def test_the_presence_term_scores_the_pixels_that_decide_found_and_false_positive():
    classes = np.zeros((3, 32, 32), np.uint8)
    classes[0, 10:12, 10:13] = 2  # a far target of 6 pixels, the 4 most probable at 0.8
    classes[1, 4:28, 4:28] = 2  # a near target, found by 4 pixels at 0.9, the rest at 0.1; image 2 has none
    target = np.full((3, 32, 32), 0.001, np.float32)
    target[0, 10:12, 10:13] = 0.2
    target[0, 10, 10:13], target[0, 11, 10] = 0.8, 0.8
    target[1, 4:28, 4:28], target[1, 4, 4:8] = 0.1, 0.9
    target[2, 0, 0:3] = 0.99  # three phantom pixels: under the score's four, but the fourth counts at 0.001
    probabilities = np.stack([1 - target, np.zeros_like(target), target], axis=-1)
    with_presence = SegmentationLoss((1.0, 1.0, 1.0), presence_weight=2.0)(classes, probabilities)
    presence = (np.asarray(with_presence) - np.asarray(SegmentationLoss()(classes, probabilities))) / 2.0
    expected = (-np.log(0.8) - np.log(0.9) - (3 * np.log(0.01) + np.log(0.999)) / 4) / 3
    np.testing.assert_allclose(presence, expected, rtol=1e-3)
