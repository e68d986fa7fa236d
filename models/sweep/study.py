"""Where a sweep's study lives: an Optuna storage addressed by a database URL, and the study in it.

The default storage is an SQLite file, ``OUT/sweeps.db``, which holds every study swept under ``OUT``. A
PostgreSQL URL (``postgresql+psycopg://USER:PASSWORD@HOST/DB``) lets workers on several machines share a study.

Optuna makes a waiting trial running with ``SELECT ... FOR UPDATE``, which SQLite ignores: two workers could both
take the same waiting trial (a failed trial queued again) and train it into the same folder (optuna/optuna#4621).
So on SQLite every transaction begins with ``BEGIN IMMEDIATE``, which takes the database's write lock before its
first read; the workers' transactions run one after another.

A running trial's worker writes a heartbeat every ``heartbeat`` seconds. A trial without one for twice that long
(its worker was killed, or its machine lost) is marked failed by the next worker that looks, and run again once
with the same options (Optuna's `RetryHeartbeatStaleTrialCallback`); a trial whose objective raised, or whose
worker was interrupted (Ctrl-C, SIGTERM), is marked failed at once.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import optuna

if TYPE_CHECKING:
    import sqlalchemy

OBJECTIVES = ("val_score", "cpu_ms_per_frame")
DIRECTIONS: tuple[Literal["maximize", "minimize"], ...] = ("maximize", "minimize")
DEFAULT_OUT = Path("runs/sweeps")
STORAGE_FILE = "sweeps.db"
HEARTBEAT_S = 30
RETRIES = 1
OPEN_ATTEMPTS = 5
DUPLICATE_SQLSTATES = {"42P07", "42710"}  # PostgreSQL: duplicate table, duplicate object
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class SweepError(Exception):
    """A sweep that cannot start or a study that cannot be read: the message names what is wrong."""


def default_storage(out: Path) -> str:
    """The SQLite URL of ``out/sweeps.db`` (absolute, so that every worker opens the same file)."""
    return f"sqlite:///{(Path(out) / STORAGE_FILE).resolve()}"


def shown(url: str) -> str:
    """``url`` with its password hidden, for messages and cards."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_storage(url: str, heartbeat: int = HEARTBEAT_S, must_exist: bool = False) -> optuna.storages.RDBStorage:
    """The Optuna storage at ``url`` with heartbeats and one retry of stale trials; raises SweepError.

    Workers started together on a new PostgreSQL database race to create its tables; the losers try again."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SweepError(
            f"--storage {url!r} is not a database URL; expected sqlite:///FILE or "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
        ) from None
    sqlite = parsed.get_backend_name() == "sqlite"
    if must_exist and sqlite and not Path(parsed.database or "").is_file():
        raise SweepError(f"No sweep storage at {parsed.database}: run a sweep first, or give --out or --storage")
    if sqlite:
        Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
    attempt = 1
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True},
                    heartbeat_interval=heartbeat,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(RETRIES),
                )
            if sqlite:
                begin_immediately(storage.engine)
            return storage
        except Exception as error:  # noqa: BLE001 (a missing driver, a refused connection: all the URL's fault)
            if not created_meanwhile(error) or attempt == OPEN_ATTEMPTS:
                raise SweepError(f"Cannot open storage {shown(url)}: {error}") from error
            attempt += 1
            time.sleep(1)


def begin_immediately(engine: sqlalchemy.engine.Engine) -> None:
    """Begin every transaction on the SQLite ``engine`` with ``BEGIN IMMEDIATE`` (see the module docstring).

    SQLAlchemy's recipe for SQLite transactions: the driver stops beginning them itself, SQLAlchemy begins them."""
    from sqlalchemy import event

    def driver_leaves_transactions_alone(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    def begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", driver_leaves_transactions_alone)
    event.listen(engine, "begin", begin_immediate)
    engine.dispose()  # the connections opened while the storage was created begin the old way


def created_meanwhile(error: Exception) -> bool:
    """Whether opening the storage failed because another worker created its tables at the same moment: a
    unique violation (SQLite, PostgreSQL's type catalogue) or PostgreSQL's "relation already exists". They are
    there now, so opening again succeeds."""
    from sqlalchemy.exc import IntegrityError

    driver_error = getattr(error, "orig", None)  # what the database said, under SQLAlchemy's wrapper
    return isinstance(error, IntegrityError) or getattr(driver_error, "sqlstate", None) in DUPLICATE_SQLSTATES


def create_study(storage: optuna.storages.RDBStorage, name: str, space: dict) -> optuna.Study:
    """The study ``name``: created with the two objectives and ``space``, or joined when it has the same space."""
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=list(DIRECTIONS),
        sampler=sampler(),
        load_if_exists=True,
    )
    recorded = study.user_attrs.get("space")
    if recorded is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(OBJECTIVES))
        study.set_user_attr("space", space)
    elif recorded != space:
        raise SweepError(
            f"Study {name!r} was created with another search space: give it the same --space, or sweep under a "
            f"new --study name. Its space: {recorded}"
        )
    return study


def load_study(storage: optuna.storages.RDBStorage, name: str) -> optuna.Study:
    """The existing study ``name``; raises SweepError listing the studies the storage holds."""
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler())
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise SweepError(
            f"No study {name!r} in {shown(storage.url)}; it holds {', '.join(names) if names else 'no study'}"
        ) from None


def sampler() -> optuna.samplers.BaseSampler:
    """Multi-objective TPE: random for the first trials, then guided by the Pareto front; ``constant_liar``
    keeps parallel workers from proposing the same options while their trials run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(n_startup_trials=5, constant_liar=True)


def fail_stale(study: optuna.Study) -> None:
    """Mark failed (and queue again) the running trials whose worker has stopped beating."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def count(study: optuna.Study, *states: optuna.trial.TrialState) -> int:
    """How many trials of ``study`` are in one of ``states``."""
    return len(study.get_trials(deepcopy=False, states=states))
