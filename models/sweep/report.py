"""What a study found: the Pareto front and the best trials as tables, the front as a picture, and a trial's
model copied out as a servable one."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import optuna

from models import store
from models.files import write_atomically
from models.sweep.study import FINISHED, SweepError

COMPLETE = optuna.trial.TrialState.COMPLETE


def trials_per_minute(study: optuna.Study) -> float | None:
    """Finished trials per minute of the study's wall time, from its first start to its last finish."""
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    if not finished:
        return None
    starts = [t.datetime_start for t in finished if t.datetime_start is not None]
    ends = [t.datetime_complete for t in finished if t.datetime_complete is not None]
    span = max(ends) - min(starts)
    return len(finished) / max(span.total_seconds() / 60, 1e-9)


def table(trials: list[optuna.trial.FrozenTrial]) -> str:
    """A Markdown table: trial, score, ms per frame, parameters, best epoch and the trial's options."""
    names = sorted({name for t in trials for name in t.params})
    lines = [
        "| trial | score | ms/frame | parameters | best epoch | " + " | ".join(names) + " |",
        "| --- " * (5 + len(names)) + "|",
    ]
    for t in trials:
        cells = [
            str(t.number),
            f"{t.values[0]:.4f}",
            f"{t.values[1]:.2f}",
            f"{t.user_attrs.get('parameters', 0):,}",
            str(t.user_attrs.get("best_epoch", "")),
        ]
        cells += [_format(t.params.get(name, "")) for name in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _format(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def report(study: optuna.Study, top: int = 10) -> str:
    """The study's counts, throughput, Pareto front (fastest first) and best trials by score."""
    states = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    rate = trials_per_minute(study)
    complete = study.get_trials(deepcopy=False, states=(COMPLETE,))
    lines = [
        f"Study {study.study_name}: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        + (f"; {rate:.2f} finished trials per minute" if rate else ""),
    ]  # fmt: skip
    if not complete:
        return "\n".join([*lines, "No complete trial yet."])
    front = sorted(study.best_trials, key=lambda t: t.values[1])
    best = sorted(complete, key=lambda t: -t.values[0])[:top]
    cpus = sorted({t.user_attrs.get("cpu", "?") for t in complete})
    return "\n".join(
        [
            *lines,
            f"CPU ms per frame measured on: {'; '.join(cpus)} (one thread)",
            "",
            f"Pareto front ({len(front)} trials, fastest first):",
            table(front),
            "",
            f"Best {len(best)} trials by validation score:",
            table(best),
        ]
    )


def plot_front(study: optuna.Study, figure: Path) -> None:
    """Validation score against CPU ms per frame for every complete trial, the Pareto front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    complete = study.get_trials(deepcopy=False, states=(COMPLETE,))
    front = sorted(study.best_trials, key=lambda t: t.values[1])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([t.values[1] for t in complete], [t.values[0] for t in complete], color="0.6", label="trials")
    ax.plot(
        [t.values[1] for t in front],
        [t.values[0] for t in front],
        "o-",
        drawstyle="steps-post",
        color="tab:blue",
        label="Pareto front",
    )
    for t in complete:
        ax.annotate(str(t.number), (t.values[1], t.values[0]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("CPU ms per frame (one thread)")
    ax.set_ylabel("validation score (best epoch)")
    cpus = "; ".join(sorted({t.user_attrs.get("cpu", "?") for t in complete}))
    ax.set_title(f"{study.study_name}: {len(complete)} complete trials, timed on {cpus}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    write_atomically(figure, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def export(study: optuna.Study, number: int, path: str | Path) -> Path:
    """Copy complete trial ``number``'s model and card to ``path`` (a model name); returns the ``.keras`` path."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise SweepError(f"No trial {number} in study {study.study_name!r} (trials 0 to {len(trials) - 1})")
    trial = trials[number]
    if trial.state != COMPLETE:
        raise SweepError(f"Trial {number} of study {study.study_name!r} is {trial.state.name}: only complete trials")
    source = Path(trial.user_attrs.get("model", ""))
    if not store.keras_path(source).is_file():
        raise SweepError(
            f"Trial {number}'s model is not on this machine: {trial.user_attrs.get('worker', '?')} wrote {source}"
        )
    store.base_path(path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store.card_path(source), store.card_path(path))
    shutil.copyfile(store.keras_path(source), store.keras_path(path))
    return store.keras_path(path)
