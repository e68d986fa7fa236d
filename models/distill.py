"""Knowledge distillation: a student network learns the truth and, beside it, a trained teacher's probabilities.

A teacher that reads the frame at full resolution (slim5 at 256 px, too slow to serve) knows where far targets
and look-alikes are better than the hand-drawn masks say: its soft probabilities give a cheaper student a target at
every pixel, the uncertain ones included. The teacher runs in inference mode on each training batch as augmented.
"""

from __future__ import annotations

import keras
from keras import ops

from models.losses import EPSILON


class Distiller(keras.Model):
    """Trains ``student`` on its compiled loss plus ``weight`` x the cross-entropy of its probabilities against
    ``teacher``'s, averaged over pixels. Both are softmax FCNs with the same output shape; the teacher is frozen.
    Calling the distiller calls the student; save ``distiller.student``."""

    def __init__(self, student: keras.Model, teacher: keras.Model, weight: float, **kwargs):
        super().__init__(**kwargs)
        if student.output_shape != teacher.output_shape:
            raise ValueError(
                f"The teacher's output {teacher.output_shape} must match the student's {student.output_shape}"
            )
        self.student, self.teacher, self.weight = student, teacher, float(weight)
        self.teacher.trainable = False

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        soft = self.teacher(x, training=False)
        return loss + self.weight * soft_cross_entropy(soft, y_pred)


def soft_cross_entropy(teacher, student):
    """Mean over the batch and pixels of −Σ teacher · log(student) over the classes (last axis)."""
    return ops.mean(-ops.sum(teacher * ops.log(ops.clip(student, EPSILON, 1.0)), axis=-1))
