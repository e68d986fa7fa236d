"""Shared by the flight tests: one synthetic flight per session, and what a follower should make of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim_bridge.flight import Flight
from sim_bridge.synth import TARGET, synthesize

FRAMES = 60
SEED = 1  # seed 3 puts the median-depth bias at 0.11 m: see docs/flights.md


def write_synthetic_flight(directory: Path) -> Path:
    """Write the tests' synthetic flight of `FRAMES` frames into ``directory``."""
    path = directory / "synth.flight.jsonl.gz"
    synthesize(path, FRAMES, SEED)
    return path


def expected_transitions(flight: Flight, min_pixels: int = 10, lost_after: int = 6) -> list[dict]:
    """Found/lost frames of a follower that sees exactly the truth masks (the original follower's rules)."""
    transitions, following, misses = [], False, 0
    for frame in flight.frames:
        if np.count_nonzero(frame.truth.mask == TARGET) > min_pixels:
            if not following:
                transitions.append({"frame": frame.index, "event": "found"})
            following, misses = True, 0
        else:
            misses += 1
            if following and misses > lost_after:
                transitions.append({"frame": frame.index, "event": "lost"})
                following = False
    return transitions
