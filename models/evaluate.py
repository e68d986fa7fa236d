"""Score a model on a dataset exactly as the Udacity notebook did (see `models.scoring`).

    python -m models.evaluate MODEL DATA_DIR [--out PRED_DIR] [--json FILE] [--figure FILE]

DATA_DIR is either one images/masks folder (our validation set) or a folder holding the three Udacity
scenario folders. Prints the counts and scores, optionally writes prediction PNGs, a JSON summary, and a
picture of image | truth | prediction for a sample and for the worst images of each scenario.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from models.dataset import DatasetError, list_pairs, read_image, read_mask
from models.imaging import resize_rgb, scale_input
from models.scoring import SCENARIOS, ScenarioScore, final_result, predicted_mask, truth_mask

BATCH_SIZE = 32


@dataclass
class EvalSet:
    """One scenario's images at the model size (uint8) and binary truth masks at the same size."""

    name: str
    stems: list[str]
    images: np.ndarray
    truths: np.ndarray


def scenario_dirs(data_dir: Path) -> dict[str, Path]:
    """The scenario folders of ``data_dir``: the three Udacity ones, or the folder itself."""
    if all((data_dir / name).is_dir() for name in SCENARIOS):
        return {name: data_dir / name for name in SCENARIOS}
    return {data_dir.resolve().name: data_dir}


def load_eval_set(name: str, folder: Path, size: int) -> EvalSet:
    """Read a folder's images resized to ``size`` and its truths resized to the prediction size."""
    pairs = list_pairs(folder)
    images = np.empty((len(pairs), size, size, 3), np.uint8)
    truths = np.empty((len(pairs), size, size, 3), np.uint8)
    for i, (image_path, mask_path) in enumerate(pairs):
        image = read_image(image_path)
        images[i] = resize_rgb(image, size)
        truths[i] = truth_mask(read_mask(mask_path, image.shape), (size, size))
    return EvalSet(name, [image.stem for image, _ in pairs], images, truths)


def load_eval_sets(data_dir: str | Path, size: int) -> list[EvalSet]:
    """Every scenario of ``data_dir`` ready for scoring at model size ``size``."""
    return [load_eval_set(name, folder, size) for name, folder in scenario_dirs(Path(data_dir)).items()]


def predict(model, images: np.ndarray) -> np.ndarray:
    """Softmax outputs for uint8 model-size images, in batches."""
    outputs = [
        np.asarray(model.predict_on_batch(scale_input(images[start : start + BATCH_SIZE])))
        for start in range(0, len(images), BATCH_SIZE)
    ]
    return np.concatenate(outputs)


def score_sets(model, sets: list[EvalSet], out_dir: Path | None = None) -> tuple[dict, dict]:
    """Score ``model`` on ``sets``; returns the result dict and, per scenario, (predictions, ScenarioScore).

    With ``out_dir``, prediction PNGs are written as ``out_dir/<scenario>/<stem>.png``.
    """
    scores, details = {}, {}
    for eval_set in sets:
        probabilities = predict(model, eval_set.images)
        score = ScenarioScore()
        for truth, probs in zip(eval_set.truths, probabilities):
            score.add(truth, predicted_mask(probs))
        if out_dir is not None:
            write_predictions(out_dir / eval_set.name, eval_set.stems, probabilities)
        scores[eval_set.name] = score
        details[eval_set.name] = (probabilities, score)
    return final_result(scores), details


def write_predictions(folder: Path, stems: list[str], probabilities: np.ndarray) -> None:
    """Write each prediction as the notebook did: ``(probabilities * 255)`` as a uint8 RGB PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, probs in zip(stems, probabilities):
        Image.fromarray((probs * 255).astype(np.uint8)).save(folder / f"{stem}.png")


def render_report(sets: list[EvalSet], details: dict, path: Path, per_kind: int = 3, seed: int = 0) -> None:
    """A picture of image | truth | prediction for a random sample and the worst images of each scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    rng = np.random.default_rng(seed)
    for eval_set in sets:
        probabilities, score = details[eval_set.name]
        ious = np.asarray(score.per_image_iou)
        target_truth = eval_set.truths[..., 2].sum((1, 2)) > 3
        target_pred = (probabilities[..., 2] > 0.5).sum((1, 2)) > 3
        involved = target_truth | target_pred
        worst = [i for i in np.argsort(ious) if involved[i]][:per_kind]
        sample = rng.choice(len(ious), size=min(per_kind, len(ious)), replace=False)
        rows += [(eval_set, i, "sample") for i in sample] + [(eval_set, i, "worst") for i in worst]
    fig, axes = plt.subplots(len(rows), 3, figsize=(7.5, 2.5 * len(rows)), squeeze=False)
    for (eval_set, i, kind), row in zip(rows, axes):
        probabilities, score = details[eval_set.name]
        panels = (eval_set.images[i], eval_set.truths[i] * 255, predicted_mask(probabilities[i]) * 255)
        for ax, panel, title in zip(row, panels, ("image", "truth", "prediction")):
            ax.imshow(panel)
            ax.set_axis_off()
            ax.set_title(title, fontsize=8)
        row[0].set_title(
            f"{eval_set.name} {kind}: {eval_set.stems[i][:28]}\ntarget IoU {score.per_image_iou[i]:.2f}",
            fontsize=7,
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def format_result(result: dict) -> str:
    """Human-readable lines of a result dict."""
    lines = [
        f"{name}: images {s['images']}, TP {s['true_pos']}, FP {s['false_pos']}, FN {s['false_neg']}, "
        f"target IoU {s['iou']:.4f}"
        for name, s in result["scenarios"].items()
    ]
    lines.append(
        f"final_IoU {result['final_iou']:.4f}  weight {result['weight']:.4f}  final_score {result['final_score']:.4f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="model path (weights/NAME, NAME.keras, or a legacy HDF5 file)")
    parser.add_argument("data_dir", type=Path, help="images/masks folder, or the three Udacity scenarios")
    parser.add_argument("--out", type=Path, help="write prediction PNGs under this folder")
    parser.add_argument("--json", type=Path, help="write the scores as JSON to this file")
    parser.add_argument("--figure", type=Path, help="picture of samples and worst images (default: beside --json)")
    args = parser.parse_args(argv)

    from models.files import write_json
    from models.store import ModelLoadError, load

    started = time.perf_counter()
    try:
        model, card = load(args.model)
        sets = load_eval_sets(args.data_dir, card["input_size"])
    except (ModelLoadError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result, details = score_sets(model, sets, args.out)
    images = sum(len(s.stems) for s in sets)
    print(format_result(result))
    print(f"{images} images in {time.perf_counter() - started:.1f} s")
    if args.json:
        write_json(args.json, result)
    figure = args.figure or (args.json.with_suffix(".png") if args.json else None)
    if figure:
        render_report(sets, details, figure)
        print(f"picture: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
