"""Distillation's loss: the teacher's probabilities are a second target (the training run: test_models_train)."""

import numpy as np
import pytest

from models import build_fcn
from models.distill import Distiller, soft_cross_entropy
from models.losses import SegmentationLoss


def test_the_loss_adds_the_weighted_cross_entropy_against_the_teacher():
    student, teacher = build_fcn("e8,c8,d8", 16), build_fcn("e8,c8,d8", 16)
    distiller = Distiller(student, teacher, weight=0.5)
    distiller.compile(loss=SegmentationLoss())
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    classes = np.random.default_rng(1).integers(0, 3, (2, 16, 16)).astype(np.uint8)
    predicted, taught = np.asarray(student(x)), np.asarray(teacher(x))
    expected = float(SegmentationLoss()(classes, predicted)) + 0.5 * np.mean(-np.sum(taught * np.log(predicted), -1))
    assert float(distiller.compute_loss(x, classes, predicted)) == pytest.approx(expected, rel=1e-5)
    assert float(soft_cross_entropy(taught, taught)) < float(soft_cross_entropy(taught, predicted))
    assert not teacher.trainable and np.asarray(distiller(x)).shape == predicted.shape


def test_a_teacher_of_another_output_shape_is_refused():
    with pytest.raises(ValueError, match="teacher's output .* must match the student's"):
        Distiller(build_fcn("e8,c8,d8", 32), build_fcn("e8,c8,d8", 16), weight=1.0)
