"""Score a model on a dataset exactly as the Udacity notebook did (see `models.scoring`).

    python -m models.evaluate MODEL DATA_DIR [DATA_DIR ...] [--out PRED_DIR] [--json FILE] [--figure FILE]
                              [--target-bias SHIFT ...]

DATA_DIR is either one images/masks folder (our validation set) or a folder holding the three Udacity
scenario folders. Prints the counts and scores, and the far-target figures: detection and IoU by the truth's
target area at the native 256x256 (`models.sizes`), and false positives on the images without the target.
Several DATA_DIRs are scored in one run, each on its own, and summed up in one table: a row per folder, a
column per size bucket. Optionally writes prediction PNGs, a JSON summary, and a picture of
image | truth | prediction for a sample and the worst images of each scenario, with a sheet of the smallest
targets. ``--target-bias -1 -0.5 0`` scores the model at several operating points in one run, its target logit
shifted as `models.target_bias` would save it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.dataset import DatasetError, list_pairs, read_image, read_mask
from models.imaging import TARGET_CLASS, resize_rgb, scale_input
from models.scoring import SCENARIOS, ScenarioScore, final_result, predicted_mask, truth_mask
from models.sizes import SIZE_BUCKETS, bucket_of, is_far, native_area

BATCH_SIZE = 32


@dataclass
class EvalSet:
    """One scenario's images at the model size (uint8), binary truth masks at the same size, and the truth's
    target area in native 256x256 pixels."""

    name: str
    stems: list[str]
    images: np.ndarray
    truths: np.ndarray
    target_areas: np.ndarray


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
    areas = np.empty(len(pairs))
    for i, (image_path, mask_path) in enumerate(pairs):
        image = read_image(image_path)
        mask = read_mask(mask_path, image.shape)
        images[i] = resize_rgb(image, size)
        truths[i] = truth_mask(mask, (size, size))
        areas[i] = native_area(np.count_nonzero(mask[..., TARGET_CLASS] > 127), mask.shape)
    return EvalSet(name, [image.stem for image, _ in pairs], images, truths, areas)


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


def size_figures(sets: list[EvalSet], details: dict) -> dict:
    """Detection and mean target IoU per truth size bucket, far-target recall, and false positives on the
    images without the target, over every scenario of ``sets``.

    A target is found when the prediction has the target as the score counts a true positive (more than
    ``PRESENCE_PIXELS`` pixels at the model's output size); an image without the target is one whose truth
    covers fewer than 4 native pixels. The far targets missed and the false positives are also named
    (``scenario/stem``), so that models can be compared image by image.
    """
    names = np.array([f"{s.name}/{stem}" for s in sets for stem in s.stems], dtype=object)
    areas = np.concatenate([s.target_areas for s in sets])
    found = np.concatenate([details[s.name][1].per_image_predicted for s in sets])
    ious = np.concatenate([details[s.name][1].per_image_iou for s in sets])
    buckets = np.array([bucket_of(area) for area in areas], dtype=object)
    figures: dict[str, Any] = {"buckets": {}}
    for name, _, _ in SIZE_BUCKETS:
        members = buckets == name
        figures["buckets"][name] = {
            "images": int(members.sum()),
            "found": int(found[members].sum()),
            "iou": float(ious[members].mean()) if members.any() else None,
        }
    far = is_far(areas)
    figures["far"] = {
        "images": int(far.sum()),
        "found": int(found[far].sum()),
        "recall": float(found[far].mean()) if far.any() else None,
        "missed": names[far & ~found].tolist(),
    }
    none = np.array([bucket is None for bucket in buckets], dtype=bool)
    figures["no_target"] = {
        "images": int(none.sum()),
        "false_pos": int(found[none].sum()),
        "false_pos_images": names[none & found].tolist(),
    }
    return figures


def write_predictions(folder: Path, stems: list[str], probabilities: np.ndarray) -> None:
    """Write each prediction as the notebook did: ``(probabilities * 255)`` as a uint8 RGB PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, probs in zip(stems, probabilities):
        Image.fromarray((probs * 255).astype(np.uint8)).save(folder / f"{stem}.png")


def render_report(
    sets: list[EvalSet], details: dict, path: Path, per_kind: int = 3, far: int = 6, seed: int = 0
) -> None:
    """A picture of image | truth | prediction for a random sample and the worst images of each scenario, then
    a far-target sheet: the ``far`` smallest targets, each cropped around its truth and enlarged."""
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
        rows += [(eval_set, i, "sample", None) for i in sample] + [(eval_set, i, "worst", None) for i in worst]
    rows += smallest_targets(sets, far)
    fig, axes = plt.subplots(len(rows), 3, figsize=(7.5, 2.5 * len(rows)), squeeze=False)
    for (eval_set, i, kind, window), row in zip(rows, axes):
        probabilities, score = details[eval_set.name]
        panels = (eval_set.images[i], eval_set.truths[i] * 255, predicted_mask(probabilities[i]) * 255)
        for ax, panel, title in zip(row, panels, ("image", "truth", "prediction")):
            ax.imshow(panel if window is None else panel[window], interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(title, fontsize=8)
        area = "" if window is None else f", {eval_set.target_areas[i]:.0f} px at 256 (enlarged)"
        row[0].set_title(
            f"{eval_set.name} {kind}: {eval_set.stems[i][:28]}\ntarget IoU {score.per_image_iou[i]:.2f}{area}",
            fontsize=7,
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def smallest_targets(sets: list[EvalSet], count: int, crop_fraction: float = 0.25) -> list[tuple]:
    """Rows for the far-target sheet: the ``count`` smallest targets (4 native pixels or more), each with a
    window of ``crop_fraction`` of the frame centred on the truth's target."""
    candidates = [(area, eval_set, i) for eval_set in sets for i, area in enumerate(eval_set.target_areas)
                  if bucket_of(area) is not None]  # fmt: skip
    rows = []
    for _, eval_set, i in sorted(candidates, key=lambda c: c[0])[:count]:
        size = eval_set.truths.shape[1]
        half = max(4, round(size * crop_fraction / 2))
        ys, xs = np.nonzero(eval_set.truths[i, ..., TARGET_CLASS])
        cy, cx = (int(ys.mean()), int(xs.mean())) if len(ys) else (size // 2, size // 2)
        top, left = min(max(0, cy - half), size - 2 * half), min(max(0, cx - half), size - 2 * half)
        rows.append((eval_set, i, "far", (slice(top, top + 2 * half), slice(left, left + 2 * half))))
    return rows


def format_sizes(figures: dict) -> str:
    """Human-readable lines of `size_figures`."""
    lines = ["target area (native px) | images | found | IoU"]
    for name, bucket in figures["buckets"].items():
        iou = "-" if bucket["iou"] is None else f"{bucket['iou']:.4f}"
        lines.append(f"  {name:>7} | {bucket['images']:6d} | {bucket['found']:5d} | {iou}")
    far, none = figures["far"], figures["no_target"]
    recall = "-" if far["recall"] is None else f"{far['recall']:.1%}"
    lines.append(f"far targets (4-100 px): found {far['found']} of {far['images']} ({recall})")
    lines.append(f"no target: {none['false_pos']} false positives in {none['images']} images")
    return "\n".join(lines)


def format_table(results: dict[str, dict]) -> str:
    """One row per dataset of ``results`` (each with its size figures): final_score, the targets found of
    each size bucket, far-target recall and false positives."""
    header = ["dataset", "images", "final_score", *(name for name, _, _ in SIZE_BUCKETS), "far (4-100)", "false pos"]
    rows = [header]
    for name, result in results.items():
        sizes = result["sizes"]
        far, none = sizes["far"], sizes["no_target"]
        recall = "-" if far["recall"] is None else f"{far['recall']:.1%}"
        rows.append([
            name, str(sum(s["images"] for s in result["scenarios"].values())), f"{result['final_score']:.4f}",
            *(f"{b['found']}/{b['images']}" for b in sizes["buckets"].values()),
            f"{far['found']}/{far['images']} ({recall})", f"{none['false_pos']}/{none['images']}",
        ])  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
    return "\n".join([lines[0], "-+-".join("-" * width for width in widths), *lines[1:]])


def format_result(result: dict) -> str:
    """Human-readable lines of a result dict."""
    lines = [
        f"{name}: images {s['images']}, TP {s['true_pos']}, FP {s['false_pos']}, FN {s['false_neg']}, "
        f"target IoU {s['iou']:.4f} (over all its images, 0 where neither truth nor prediction has the target)"
        for name, s in result["scenarios"].items()
    ]
    if len(result["scenarios"]) == 1:
        lines.append("final_IoU is the mean target IoU over the images whose truth has the target")
    lines.append(
        f"final_IoU {result['final_iou']:.4f}  weight {result['weight']:.4f}  final_score {result['final_score']:.4f}"
    )
    return "\n".join(lines)


def finite_shift(text: str) -> float:
    """One ``--target-bias`` value: a finite logit shift."""
    try:
        shift = float(text)
    except ValueError:
        shift = math.nan
    if not math.isfinite(shift):
        raise argparse.ArgumentTypeError(f"expected a finite number such as -0.5. Received: {text!r}")
    return shift


def score_folders(model, folders: dict[str, list[EvalSet]], out: Path | None) -> tuple[dict, list[EvalSet], dict]:
    """Score ``model`` on every folder and print each result; returns the results by folder, and every scenario
    with its predictions for the report (scenario names numbered by folder when there are several)."""
    several = len(folders) > 1
    results, all_sets, all_details = {}, [], {}
    for number, (name, sets) in enumerate(folders.items(), 1):
        out_dir = out / f"{number}_{Path(name).name}" if out and several else out
        result, details = score_sets(model, sets, out_dir)
        result["sizes"] = size_figures(sets, details)
        results[name] = result
        if several:
            print(f"== {name}")
        print(format_result(result))
        if several:  # the report's scenario names must stay apart (two folders may both be 'validation')
            sets = [dataclasses.replace(s, name=f"{number}:{s.name}") for s in sets]
            details = {f"{number}:{key}": value for key, value in details.items()}
        all_sets += sets
        all_details.update(details)
    return results, all_sets, all_details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="model path (weights/NAME, NAME.keras, or a legacy HDF5 file)")
    parser.add_argument(
        "data_dirs",
        type=Path,
        nargs="+",
        help="images/masks folder, or the three Udacity scenarios; several for several",
    )
    parser.add_argument("--out", type=Path, help="write prediction PNGs under this folder")
    parser.add_argument("--json", type=Path, help="write the scores as JSON to this file")
    parser.add_argument("--figure", type=Path, help="picture of samples and worst images (default: beside --json)")
    parser.add_argument(
        "--target-bias",
        type=finite_shift,
        nargs="+",
        metavar="SHIFT",
        help="score the model with its target logit shifted by each of these (e.g. -1 -0.5 0), as "
        "`models.target_bias` would save it: one table row per dataset and shift",
    )
    args = parser.parse_args(argv)
    shifts = args.target_bias or [0.0]
    if len(shifts) > 1 and (args.out or args.figure):
        parser.error("--out and --figure show one operating point: give --target-bias one value")

    from models.files import write_json
    from models.store import ModelLoadError, load
    from models.target_bias import shift_target_bias

    started = time.perf_counter()
    try:
        model, card = load(args.model)
        folders = {str(folder): load_eval_sets(folder, card["input_size"]) for folder in args.data_dirs}
    except (ModelLoadError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows, by_shift, applied = {}, {}, 0.0
    for shift in shifts:
        if args.target_bias:
            try:
                shift_target_bias(model, shift - applied)
            except ValueError as error:  # a model without the output layer by its name
                print(f"error: cannot shift the target logit of {args.model}: {error}", file=sys.stderr)
                return 2
            applied = shift
            print(f"=== target logit shifted by {shift:+g}")
        results, all_sets, all_details = score_folders(model, folders, args.out)
        by_shift[f"{shift:+g}"] = {"datasets": results} if len(folders) > 1 else results[str(args.data_dirs[0])]
        rows.update({f"{name} {shift:+g}" if args.target_bias else name: result for name, result in results.items()})
    print(format_table(rows) if len(rows) > 1 else format_sizes(next(iter(rows.values()))["sizes"]))
    images = sum(len(s.stems) for s in all_sets)
    points = f" at {len(shifts)} operating points" if len(shifts) > 1 else ""
    print(f"{images} images{points} in {time.perf_counter() - started:.1f} s")
    if args.json:
        write_json(args.json, {"target_bias": by_shift} if args.target_bias else by_shift["+0"])
    figure = args.figure or (args.json.with_suffix(".png") if args.json and len(shifts) == 1 else None)
    if figure:
        render_report(all_sets, all_details, figure)
        print(f"picture: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
