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
