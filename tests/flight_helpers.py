"""Shared by the flight tests: one synthetic flight per session, and what a follower should make of it."""

from __future__ import annotations

from collections import deque
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


def expected_transitions(
    flight: Flight, min_pixels: int = 10, lost_after: int = 6, confirm: tuple[int, int] = (1, 1)
) -> list[dict]:
    """Found/lost frames of a follower that sees exactly the truth masks: found when the target was present in
    ``confirm`` = (k, n): k of the last n frames (1 of 1: the original follower; the Kalman tracker's 2 of 3 while
    every detection falls in its gate), lost after more than ``lost_after`` frames in a row without it."""
    hits, needed = confirm
    transitions, following, misses, recent = [], False, 0, deque(maxlen=needed)
    for frame in flight.frames:
        present = np.count_nonzero(frame.truth.mask == TARGET) > min_pixels
        recent.append(present)
        if present:
            if not following and sum(recent) >= hits:
                transitions.append({"frame": frame.index, "event": "found"})
                following = True
            misses = 0
        else:
            misses += 1
            if following and misses > lost_after:
                transitions.append({"frame": frame.index, "event": "lost"})
                following = False
    return transitions
