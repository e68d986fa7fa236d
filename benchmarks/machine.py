"""What a benchmark ran on, as every benchmark reports it: the machine and the load averages."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from typing import Any


def machine() -> dict[str, Any]:
    """CPU count and model name (from /proc/cpuinfo), Python version, the Keras backend and its version."""
    from models.devices import backend_version
    from models.latency import cpu_model

    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "backend": backend_version(),
    }


def format_loads(values: Sequence[float]) -> str:
    """Load averages (1/5/15 min) as the benchmarks print them: ``"0.41 0.52 0.60"``."""
    return " ".join(f"{value:.2f}" for value in values)
