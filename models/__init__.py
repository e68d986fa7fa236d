"""The follow-me segmentation network: architecture, training, evaluation and weights I/O.

The public names load on first use, so that ``models.imaging`` (pixel conventions, class numbers) can be
imported without importing Keras.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "PRESETS": "models.architecture",
    "build_fcn": "models.architecture",
    "parse_spec": "models.architecture",
    "ModelLoadError": "models.store",
    "load": "models.store",
    "save": "models.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
