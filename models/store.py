"""Saving and loading models with their cards.

Our models are Keras 3 native files: ``NAME.keras`` with the model card ``NAME.card.json`` beside it, both
addressed by ``NAME`` (so ``weights/model_weights`` loads ``weights/model_weights.keras``). The 2017 project's
pair, an HDF5 weights file ``NAME`` plus ``config_NAME`` beside it, loads too (see `models.legacy`).
Files are written to a temporary name and renamed, so a crash never leaves a half-written model or card.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import keras

from models import layers  # noqa: F401  (registers the custom layers for deserialization)
from models.files import write_atomically, write_json

KERAS_SUFFIX = ".keras"
CARD_SUFFIX = ".card.json"
KERAS_CONFIG = "config.json"  # what every .keras archive holds beside its weights


class ModelLoadError(Exception):
    """A model path that does not exist or does not hold a readable model."""


def base_path(path: str | os.PathLike) -> Path:
    """The name a model is addressed by: ``path`` without a ``.keras`` suffix."""
    path = Path(path)
    return path.with_suffix("") if path.suffix == KERAS_SUFFIX else path


def card_path(path: str | os.PathLike) -> Path:
    """Where the card of the model addressed by ``path`` lives."""
    base = base_path(path)
    return base.with_name(base.name + CARD_SUFFIX)


def keras_path(path: str | os.PathLike) -> Path:
    """Where the native file of the model addressed by ``path`` lives."""
    base = base_path(path)
    return base.with_name(base.name + KERAS_SUFFIX)


def save(model: keras.Model, path: str | os.PathLike, card: dict) -> Path:
    """Save ``model`` as ``path.keras`` and ``card`` as ``path.card.json``; returns the ``.keras`` path."""
    target = keras_path(path)
    write_atomically(target, model.save)
    write_json(card_path(path), card)
    return target


def load(path: str | os.PathLike) -> tuple[keras.Model, dict]:
    """Load a model ready for inference and its card (``{}`` fields filled from the model when absent).

    ``path`` names a native model (``NAME`` or ``NAME.keras``) or a 2017-era HDF5 weights file with its
    ``config_NAME`` beside it. Raises ModelLoadError naming the path and the reason.
    """
    from models import legacy

    given = Path(path)
    if legacy.is_legacy_pair(given):
        try:
            model = legacy.load_legacy(given)
        except legacy.LegacyFormatError as error:
            raise ModelLoadError(str(error)) from error
        card: dict[str, Any] = {"arch": "legacy", "source": str(given)}
    else:
        native = keras_path(given)
        if not native.is_file():
            raise ModelLoadError(
                f"No model at {str(given)!r}: expected {str(native)!r} (Keras native) or an HDF5 weights "
                f"file with config_{given.name} beside it"
            )
        problem = keras_file_problem(native)
        if problem:
            raise ModelLoadError(f"Cannot read model {str(native)!r}: not a valid .keras file ({problem})")
        try:
            model = keras.saving.load_model(native, compile=False)
        except Exception as error:  # noqa: BLE001 (any failure to read the file is the file's fault)
            raise ModelLoadError(f"Cannot read model {str(native)!r}: {error}") from error
        card = read_card(given)
    card.setdefault("input_size", int(model.input_shape[1]))
    return model, card


def keras_file_problem(native: Path) -> str | None:
    """What makes ``native`` unreadable as a .keras archive, in a few words, or None when it looks whole: a zip
    archive with the Keras config and members whose checksums match."""
    if not zipfile.is_zipfile(native):
        return "not a zip archive: truncated, or not a Keras file at all"
    try:
        with zipfile.ZipFile(native) as archive:
            if KERAS_CONFIG not in archive.namelist():
                return f"the archive has no {KERAS_CONFIG}"
            damaged = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        return f"a damaged zip archive: {error}"
    return f"member {damaged!r} is damaged" if damaged else None


def read_card(path: str | os.PathLike) -> dict:
    """The card beside the model addressed by ``path``, or ``{}`` when there is none."""
    card_file = card_path(path)
    if not card_file.is_file():
        return {}
    try:
        return json.loads(card_file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"Cannot read model card {str(card_file)!r}: {error}") from error
