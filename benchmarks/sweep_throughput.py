"""A CPU sweep on a subset of the data, with trials side by side against one at a time, in the same run.

    python -m benchmarks.sweep_throughput [--trials 6] [--train-images 200] [--val-images 100] [--out DIR]

Copies every n-th image/mask pair of ../shared/followme_data/train and validation into ``OUT/data`` (default
``runs/sweep_bench``), then:

1. ``python -m models.sweep --workers 2`` sweeps study ``cpu-w2`` with `SPACE` (the default family at CPU
   sizes: 96 or 128 px, 3 epochs);
2. study ``cpu-w1`` is given the same trials' options, in the same order (enqueued), and
   ``python -m models.sweep --workers 1`` runs them one at a time.

Prints, per study, the command's wall time and the finished trials per minute, then ``--report cpu-w2``, whose
Pareto front PNG it writes to ``--figure`` (default docs/sweep_pareto.png).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from models.dataset import list_pairs
from models.latency import cpu_model

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "followme_data"
SPACE = Path(__file__).with_name("sweep_cpu_space.toml")


def copy_subset(source: Path, target: Path, count: int) -> Path:
    """Every n-th pair of ``source`` (``count`` in all) into ``target``; kept when already there."""
    if target.is_dir():
        return target
    pairs = list_pairs(source)
    for image, mask in pairs[:: max(1, len(pairs) // count)][:count]:
        for path, folder in ((image, "images"), (mask, "masks")):
            (target / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / folder / path.name)
    return target


def sweep(data: Path, out: Path, study: str, trials: int, workers: int) -> float:
    """Run ``python -m models.sweep`` on the subset; returns its wall time in seconds."""
    command = [
        sys.executable, "-m", "models.sweep", "--train", str(data / "train"), "--val", str(data / "val"),
        "--space", str(SPACE), "--out", str(out), "--study", study, "--trials", str(trials), "--workers", str(workers),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    return time.perf_counter() - started


def enqueue_same_trials(out: Path, source: str, target: str) -> int:
    """Create study ``target`` with ``source``'s space and queue ``source``'s finished trials' options, in order."""
    from models.sweep import study as studies

    storage = studies.open_storage(studies.default_storage(out))
    original = studies.load_study(storage, source)
    copy = studies.create_study(storage, target, original.user_attrs["space"])
    finished = sorted(original.get_trials(deepcopy=False, states=studies.FINISHED), key=lambda t: t.number)
    for trial in finished:
        copy.enqueue_trial(trial.params)
    return len(finished)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--train-images", type=int, default=200)
    parser.add_argument("--val-images", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "sweep_bench")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "sweep_pareto.png")
    args = parser.parse_args()
    from models.sweep import study as studies
    from models.sweep.report import trials_per_minute

    copy_subset(DATA / "train", args.out / "data" / "train", args.train_images)
    copy_subset(DATA / "validation", args.out / "data" / "val", args.val_images)
    sweeps = args.out / "sweeps"
    shutil.rmtree(sweeps, ignore_errors=True)
    wall = {"cpu-w2": sweep(args.out / "data", sweeps, "cpu-w2", args.trials, 2)}
    queued = enqueue_same_trials(sweeps, "cpu-w2", "cpu-w1")
    wall["cpu-w1"] = sweep(args.out / "data", sweeps, "cpu-w1", queued, 1)

    storage = studies.open_storage(studies.default_storage(sweeps))
    print(f"\nmachine: {os.cpu_count()} CPU cores, {cpu_model()}; {args.train_images} training and "
          f"{args.val_images} validation images")  # fmt: skip
    print("| study | workers | finished | pruned | wall s | trials/min (wall) | trials/min (first start to last end) |")
    print("| --- " * 7 + "|")
    for name, workers in (("cpu-w2", 2), ("cpu-w1", 1)):
        study = studies.load_study(storage, name)
        done = studies.count(study, *studies.FINISHED)
        pruned = studies.count(study, studies.FINISHED[1])
        print(f"| {name} | {workers} | {done} | {pruned} | {wall[name]:.0f} | {done / wall[name] * 60:.2f} | "
              f"{trials_per_minute(study):.2f} |")  # fmt: skip
    report = ["--report", "cpu-w2", "--out", str(sweeps), "--figure", str(args.figure)]
    subprocess.run([sys.executable, "-m", "models.sweep", *report], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
