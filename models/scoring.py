"""The Udacity Follow-Me score, computed exactly as the 2017 notebook did.

Per image: the prediction is ``(probabilities * 255).astype(uint8)``, a class is predicted where its channel
is > 127; the truth mask is clipped to {0, 1} as uint8 and resized to the prediction size with PIL bilinear
when the sizes differ. IoU per channel = |A ∩ B| / |A ∪ B|, 0 when the union is empty. The target is present in
the truth when it has more than 3 pixels, predicted present likewise; TP, FP and FN are counted per image.

A scenario's target IoU is the sum of per-image target IoUs over its image count. With the three Udacity
scenario folders, final_IoU is the mean of the target IoUs of ``following_images`` and ``patrol_with_targ``;
for a single folder it is the mean target IoU over images whose truth has the target. The weight is
TP / (TP + FP + FN) over everything, and final_score = final_IoU x weight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from models.imaging import TARGET_CLASS

PRESENCE_PIXELS = 3
SCENARIOS = ("following_images", "patrol_non_targ", "patrol_with_targ")
IOU_SCENARIOS = ("following_images", "patrol_with_targ")


def predicted_mask(probabilities: np.ndarray) -> np.ndarray:
    """Binary (H, W, 3) uint8 prediction from softmax output, through the uint8 PNG the notebook wrote."""
    return ((probabilities * 255).astype(np.uint8) > 127).astype(np.uint8)


def truth_mask(mask_rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Binary (H, W, 3) uint8 truth: the RGB mask clipped to {0, 1}, PIL-bilinear resized to ``size`` (H, W)."""
    truth = mask_rgb.clip(0, 1).astype(np.uint8)
    if truth.shape[:2] != tuple(size):
        truth = np.asarray(Image.fromarray(truth).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return truth


def iou(truth: np.ndarray, prediction: np.ndarray) -> float:
    """|A ∩ B| / |A ∪ B| of two binary arrays, 0 when the union is empty."""
    union = np.count_nonzero(truth | prediction)
    return float(np.count_nonzero(truth & prediction)) / union if union else 0.0


@dataclass
class ScenarioScore:
    """Accumulated counts for one folder of images."""

    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    images: int = 0
    iou_sum: float = 0.0
    images_with_target: int = 0
    iou_sum_with_target: float = 0.0
    per_image_iou: list[float] = field(default_factory=list, repr=False)
    per_image_predicted: list[bool] = field(default_factory=list, repr=False)

    def add(self, truth: np.ndarray, prediction: np.ndarray) -> float:
        """Score one image's binary (H, W, 3) truth and prediction; returns its target IoU."""
        target_truth, target_pred = truth[..., TARGET_CLASS], prediction[..., TARGET_CLASS]
        target_iou = iou(target_truth, target_pred)
        present = int(target_truth.sum()) > PRESENCE_PIXELS
        predicted = int(target_pred.sum()) > PRESENCE_PIXELS
        self.true_pos += present and predicted
        self.false_neg += present and not predicted
        self.false_pos += predicted and not present
        self.images += 1
        self.iou_sum += target_iou
        self.images_with_target += present
        self.iou_sum_with_target += target_iou * present
        self.per_image_iou.append(target_iou)
        self.per_image_predicted.append(predicted)
        return target_iou

    @property
    def iou(self) -> float:
        """The scenario's target IoU: per-image IoUs summed over all its images, divided by its image count."""
        return self.iou_sum / self.images if self.images else 0.0

    @property
    def iou_with_target(self) -> float:
        """Mean target IoU over the images whose truth has the target."""
        return self.iou_sum_with_target / self.images_with_target if self.images_with_target else 0.0

    def summary(self) -> dict:
        """The JSON form: counts, IoU and image count."""
        data = asdict(self)
        return {
            "true_pos": data["true_pos"],
            "false_pos": data["false_pos"],
            "false_neg": data["false_neg"],
            "iou": self.iou,
            "images": data["images"],
        }


def weight(scores: list[ScenarioScore]) -> float:
    """TP / (TP + FP + FN) over all scenarios, 0 when there are no counts."""
    tp = sum(s.true_pos for s in scores)
    total = tp + sum(s.false_pos + s.false_neg for s in scores)
    return tp / total if total else 0.0


def final_result(scenarios: dict[str, ScenarioScore]) -> dict:
    """final_score, final_iou, weight and per-scenario summaries, for one folder or the Udacity three."""
    if set(scenarios) == set(SCENARIOS):
        final_iou = float(np.mean([scenarios[name].iou for name in IOU_SCENARIOS]))
    elif len(scenarios) == 1:
        final_iou = next(iter(scenarios.values())).iou_with_target
    else:
        raise ValueError(f"Expected one folder or the scenarios {SCENARIOS}. Received: {sorted(scenarios)}")
    w = weight(list(scenarios.values()))
    return {
        "final_score": final_iou * w,
        "final_iou": final_iou,
        "weight": w,
        "scenarios": {name: score.summary() for name, score in scenarios.items()},
    }
