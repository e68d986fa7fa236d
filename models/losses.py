"""Losses for the 3-class softmax output, in backend-agnostic ``keras.ops``.

Cross-entropy alone lets a target of a few dozen pixels drown in 25,000 background pixels; the soft Dice term on
the target channel scores the target's overlap directly. Over the whole batch, the largest targets still set most
of it; per image, each image's target counts alike, the far one of 20 pixels as much as the near one of 5,000.
The score itself decides per image: the target is found when more than ``PRESENCE_PIXELS`` pixels predict it.
The presence term trains that decision on the few pixels that make it.
"""

from __future__ import annotations

import keras
from keras import ops

from models.imaging import TARGET_CLASS
from models.scoring import PRESENCE_PIXELS

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] before their log


@keras.saving.register_keras_serializable(package="followme")
class SegmentationLoss(keras.losses.Loss):
    """Weighted categorical cross-entropy plus ``dice_weight`` x (1 - soft Dice of the target channel).

    The truth is one-hot (B, H, W, C) or class indices (B, H, W), one-hot encoded here, on the device: training
    batches carry indices, a twelfth of the bytes, and the augmentation workers skip the encoding.
    ``class_weights`` scales each pixel's cross-entropy by the weight of its true class. The Dice is computed
    over the whole batch, or with ``dice_per_image`` for each image that has the target; with ``dice_empty`` too
    the images without it are scored on what they predict of it, 1 - 1 / (1 + its summed probability), which is
    near 0 for a clean image and near 1 for a false positive. ``presence_weight`` adds the score's per-image
    decision (`presence_loss`).
    """

    def __init__(
        self,
        class_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        dice_weight: float = 0.0,
        dice_per_image: bool = False,
        dice_empty: bool = False,
        presence_weight: float = 0.0,
        name: str = "segmentation_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.class_weights = tuple(float(w) for w in class_weights)
        self.dice_weight = float(dice_weight)
        self.dice_per_image = bool(dice_per_image)
        self.dice_empty = bool(dice_empty)
        self.presence_weight = float(presence_weight)

    def call(self, y_true, y_pred):
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.one_hot(ops.cast(y_true, "int32"), y_pred.shape[-1], dtype=y_pred.dtype)
        y_pred = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
        pixel_weights = ops.sum(y_true * ops.convert_to_tensor(self.class_weights, dtype=y_pred.dtype), axis=-1)
        cross_entropy = -ops.sum(y_true * ops.log(y_pred), axis=-1) * pixel_weights
        loss = ops.mean(cross_entropy, axis=(1, 2))
        if self.dice_weight:
            truth, pred = y_true[..., TARGET_CLASS], y_pred[..., TARGET_CLASS]
            axes = (1, 2) if self.dice_per_image else None
            truth_sum = ops.sum(truth, axis=axes)
            dice = (2.0 * ops.sum(truth * pred, axis=axes) + 1.0) / (truth_sum + ops.sum(pred, axis=axes) + 1.0)
            scored = ops.cast(truth_sum > 0, loss.dtype) if self.dice_per_image and not self.dice_empty else 1.0
            loss = loss + self.dice_weight * (1.0 - dice) * scored
        if self.presence_weight:
            loss = loss + self.presence_weight * presence_loss(y_true[..., TARGET_CLASS], y_pred[..., TARGET_CLASS])
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "class_weights": self.class_weights,
            "dice_weight": self.dice_weight,
            "dice_per_image": self.dice_per_image,
            "dice_empty": self.dice_empty,
            "presence_weight": self.presence_weight,
        }


def presence_loss(truth, pred):
    """Per image, the cross-entropy of the score's decision on the ``PRESENCE_PIXELS + 1`` pixels that make it.

    ``truth`` and ``pred`` are the target channel, (B, H, W). An image whose truth has the target (more than
    ``PRESENCE_PIXELS`` pixels) is found when that many of its target pixels predict it: the term is the mean
    -log p of its most probable target pixels. An image without it is a false positive when any that many
    pixels predict it: the mean -log(1 - p) of its most probable pixels anywhere. Far targets and hard
    negatives weigh as much as the rest, whatever their size.
    """
    count = PRESENCE_PIXELS + 1
    truth = ops.reshape(truth, (ops.shape(truth)[0], -1))
    pred = ops.clip(ops.reshape(pred, (ops.shape(pred)[0], -1)), EPSILON, 1.0 - EPSILON)
    present = ops.cast(ops.sum(truth, axis=1) > PRESENCE_PIXELS, pred.dtype)
    on_target, _ = ops.top_k(pred * truth, count)
    anywhere, _ = ops.top_k(pred, count)
    missed = -ops.mean(ops.log(ops.maximum(on_target, EPSILON)), axis=1)
    false_alarm = -ops.mean(ops.log(1.0 - anywhere), axis=1)
    return present * missed + (1.0 - present) * false_alarm
