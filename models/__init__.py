"""The follow-me segmentation network: architecture, training, evaluation and weights I/O."""

from models.architecture import PRESETS, build_fcn, parse_spec
from models.store import ModelLoadError, load, save

__all__ = ["PRESETS", "ModelLoadError", "build_fcn", "load", "parse_spec", "save"]
