"""The ``python -m models.sweep`` command: run a sweep, report on a study, export a trial's model.

python -m models.sweep --train DIR --val DIR --study NAME --trials N [--workers K] [--storage URL]
    [--space FILE] [--out DIR] [--timeout S] [--val-far DIR]
python -m models.sweep --report NAME [--out DIR | --storage URL] [--figure PNG]
python -m models.sweep --export N PATH --study NAME [--out DIR | --storage URL]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from models.dataset import DatasetError, list_pairs
from models.evaluate import scenario_dirs
from models.sweep import study as studies
from models.sweep.space import DEFAULT_SPACE, SpaceError, load_space
from models.sweep.workers import SweepConfig, limit_threads, run_worker, run_workers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m models.sweep",
        description="Multi-objective sweeps over models.train (validation score, CPU ms per frame) with Optuna.",
    )
    parser.add_argument("--train", type=Path, help="training folder (images/, masks/)")
    parser.add_argument("--val", type=Path, help="validation folder: the score trials are compared and pruned on")
    parser.add_argument("--val-far", type=Path, help="far-target check set: the score is its mean with --val's")
    parser.add_argument("--study", help="the study's name: a sweep given the same name joins it")
    parser.add_argument("--trials", type=int, help="finished (complete or pruned) trials the study should have")
    parser.add_argument("--workers", type=int, default=1, help="trials side by side on this machine (processes)")
    parser.add_argument("--storage", help="database URL (default: sqlite:///OUT/sweeps.db)")
    parser.add_argument("--space", type=Path, default=DEFAULT_SPACE, help="search space TOML file")
    parser.add_argument("--out", type=Path, default=studies.DEFAULT_OUT, help="OUT/STUDY/trial-N/ hold the trials")
    parser.add_argument("--timeout", type=float, help="start no trial after this many seconds")
    parser.add_argument(
        "--heartbeat", type=int, default=studies.HEARTBEAT_S, help="a trial silent for twice this is failed"
    )
    parser.add_argument("--threads", type=int, help="threads per worker (default: cores / --workers)")
    parser.add_argument("--report", metavar="NAME", help="print study NAME's Pareto front and best trials")
    parser.add_argument("--figure", type=Path, help="with --report: the front's PNG (default OUT/NAME/pareto.png)")
    parser.add_argument("--export", nargs=2, metavar=("N", "PATH"), help="copy trial N's model to PATH")
    args = parser.parse_args(argv)
    if args.report is None and args.export is None:
        missing = [f"--{name}" for name in ("train", "val", "study", "trials") if getattr(args, name) is None]
        if missing:
            parser.error(f"a sweep needs {', '.join(missing)} (or give --report NAME or --export N PATH)")
        if args.trials < 1 or args.workers < 1:
            parser.error(f"--trials and --workers must be at least 1. Received: {args.trials}, {args.workers}")
    if args.export is not None:
        if args.study is None:
            parser.error("--export N PATH needs --study NAME")
        if not args.export[0].isdigit():
            parser.error(f"--export N PATH: N is a trial number. Received: {args.export[0]!r}")
    return args


def sweep(args: argparse.Namespace) -> int:
    """Create or join the study and run its trials in ``--workers`` processes (this one when 1)."""
    if args.threads:
        limit_threads(args.threads)
    list_pairs(args.train)
    for folder in [*scenario_dirs(args.val).values(), *(scenario_dirs(args.val_far).values() if args.val_far else [])]:
        list_pairs(folder)
    space = load_space(args.space)
    config = SweepConfig(
        args.train.resolve(), args.val.resolve(), args.val_far.resolve() if args.val_far else None, args.study,
        args.trials, args.storage or studies.default_storage(args.out), args.space.resolve(), args.out.resolve(),
        args.timeout, args.heartbeat, args.threads,
    )  # fmt: skip
    study = studies.create_study(studies.open_storage(config.storage, config.heartbeat), args.study, space.as_dict())
    if args.workers > 1:
        print(f"Sweeping study {args.study} in {studies.shown(config.storage)}: {args.trials} trials, "
              f"{args.workers} workers", flush=True)  # fmt: skip
        status = run_workers(config, args.workers)
    else:
        status = run_worker(config, study, space)
    if not args.threads:
        print(f"Report: python -m models.sweep --report {args.study}" + _where(args), flush=True)
    return status


def _where(args: argparse.Namespace) -> str:
    if args.storage:
        return f" --storage '{studies.shown(args.storage)}'"
    return "" if args.out == studies.DEFAULT_OUT else f" --out {args.out}"


def open_existing(args: argparse.Namespace, name: str):
    """The study ``name`` in --storage or under --out, which must exist."""
    url = args.storage or studies.default_storage(args.out)
    return studies.load_study(studies.open_storage(url, args.heartbeat, must_exist=True), name)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up lines, in every worker
    args = parse_args(argv)
    try:
        if args.report:
            from models.sweep.report import plot_front, report

            study = open_existing(args, args.report)
            print(report(study))
            figure = args.figure or args.out / args.report / "pareto.png"
            plot_front(study, figure)
            print(f"Pareto front: {figure}")
        elif args.export:
            from models.sweep.report import export

            path = export(open_existing(args, args.study), int(args.export[0]), args.export[1])
            print(f"Exported trial {args.export[0]} of {args.study} to {path}")
        else:
            return sweep(args)
    except (studies.SweepError, SpaceError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted: the running trials are marked failed; the same command resumes the study", file=sys.stderr)
        return 130
    return 0
