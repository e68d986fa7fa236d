"""A closed-loop flight's log and its score: what a user asks of a whole flight. No I/O here.

The log (`FlightLog`), written by `sim_bridge.fly` as the flight goes: every frame sent (`FrameRecord`: the
drone's mode and what its FOLLOW is on when the frame was sent, the hero's pixels in the truth mask, positions),
every event the server sent (`Answer`: the frame it answers, whether the drone accepted it, what its position
was near), every switch of the drone's mode (`Switch`), the drone's track, and the server's frame counters.

What a position is near (`toward`): the person whose body centre is nearest to it on the ground, when within
`ON_PERSON_M`: ``hero`` or ``bystander``; else ``nothing``. A FOLLOW is *on* what the last position the drone
accepted was near.

The score (`score`), every time in seconds of simulated time, a frame standing for one frame interval; the hero is
*visible* in a frame whose truth mask holds more than ``min_pixels`` hero pixels:

- ``acquisition_s``: from the hero's first visible frame to the first moment, from then on, that the drone is in
  FOLLOW on the hero (null if never);
- ``follow_share``: of the visible frames sent after that moment, the share sent while the drone was in FOLLOW on
  the hero (0 if never acquired, null if the hero was never visible);
- ``wrong_follow_s``: time in FOLLOW (frames sent in FOLLOW) while the hero was not visible; ``wrong_follows``:
  FOLLOW entered on a bystander or on nothing;
- ``lost_while_visible``: ``object_lost`` events answering a frame in which the hero was visible;
- ``position_error_m``: ``median`` and ``p90`` distance from each ``object_detected`` position to the truth
  position of the frame it answers (`sim_bridge.summary`'s ``loc_err_m``);
- ``distance_kept_m``: ``median`` ground distance from the drone to the hero over the frames sent in FOLLOW on it;
- ``frames``: ``answered`` (processed by the server), ``dropped`` and ``rejected``, from its ``/healthz``
  counters over the flight (null without them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim_bridge.flight import RecordedFrame, Truth
from sim_bridge.summary import LOST, Response, summarize
from sim_bridge.synth import TARGET
from sim_bridge.world import World

ON_PERSON_M = 1.5
HERO, BYSTANDER, NOTHING = "hero", "bystander", "nothing"
FOLLOW, PATROL = "FOLLOW", "PATROL"
SCORE_KEYS = (
    "acquisition_s",
    "follow_share",
    "wrong_follow_s",
    "wrong_follows",
    "lost_while_visible",
    "position_error_m",
    "distance_kept_m",
    "frames",
)


@dataclass(frozen=True)
class FrameRecord:
    """A frame sent: index, time (s since the flight's start), the drone's mode and what its FOLLOW was on (None
    in PATROL), the hero's pixels in the truth mask, the truth position (None when the hero is hidden), the hero's
    feet and the drone (3,)."""

    index: int
    t: float
    mode: str
    on: str | None
    hero_pixels: int
    truth_position: np.ndarray | None
    hero: np.ndarray
    drone: np.ndarray


@dataclass(frozen=True)
class Answer:
    """An event from the server: when the drone got it (s), the frame it answers, name and payload, whether the
    drone accepted it (``object_detected`` only) and what its position was near."""

    t: float
    frame: int
    name: str
    data: Any
    accepted: bool | None = None
    toward: str | None = None


@dataclass(frozen=True)
class Switch:
    """A change of the drone's mode: when (s), the frame whose answer caused it (None for the ping watchdog), the
    new mode, the cause (``object_detected``, ``object_lost``, ``ping timeout``) and, into FOLLOW, what it is on."""

    t: float
    frame: int | None
    mode: str
    cause: str
    toward: str | None = None


@dataclass
class FlightLog:
    """A whole flight: the frames sent, the answers, the switches, the drone's track ``(t, x, y, z, mode)`` at each
    frame, the server's frame counters over the flight (`sim_bridge.replay.counts_since`), the frame interval."""

    behaviour: str
    frame_interval_s: float
    frames: list[FrameRecord] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    switches: list[Switch] = field(default_factory=list)
    counts: dict[str, int] | None = None


def toward(world: World, position: Sequence[float] | np.ndarray, t: float) -> str:
    """What a position is near at time ``t``: ``hero``, ``bystander`` or ``nothing`` (see the module docstring)."""
    centres = np.array([person.walk.position(t) for person in world.people])
    distances = np.linalg.norm(centres - np.asarray(position, np.float64)[:2], axis=1)
    nearest = int(np.argmin(distances))
    if distances[nearest] > ON_PERSON_M:
        return NOTHING
    return HERO if world.people[nearest].label == TARGET else BYSTANDER


def visible(frame: FrameRecord, min_pixels: int) -> bool:
    """Whether the hero is visible in a frame: more than ``min_pixels`` of its pixels in the truth mask."""
    return frame.hero_pixels > min_pixels


def follow_stints(log: FlightLog, end_s: float) -> list[tuple[float, float, str | None]]:
    """(start, end, on) of every stretch of FOLLOW, ``on`` updated by each accepted position (a new stretch)."""
    stints: list[tuple[float, float, str | None]] = []
    current: tuple[float, str | None] | None = None
    events = sorted(
        [(s.t, 0, s.mode, s.toward) for s in log.switches]
        + [(a.t, 1, FOLLOW, a.toward) for a in log.answers if a.accepted],
        key=lambda event: event[:2],  # a switch before the answer that caused it
    )
    for t, is_answer, mode, on in events:
        if current is not None:
            stints.append((current[0], t, current[1]))
        current = (t, on) if mode == FOLLOW and (not is_answer or current is not None) else None
    if current is not None:
        stints.append((current[0], end_s, current[1]))
    return [stint for stint in stints if stint[1] > stint[0]]


def acquisition_time(log: FlightLog, min_pixels: int) -> tuple[float | None, float | None]:
    """(time of the hero's first visible frame, time of acquisition), each None when it never happens."""
    seen = [frame.t for frame in log.frames if visible(frame, min_pixels)]
    if not seen:
        return None, None
    end = log.frames[-1].t + log.frame_interval_s
    on_hero = [max(start, seen[0]) for start, stop, on in follow_stints(log, end) if on == HERO and stop > seen[0]]
    return seen[0], (on_hero[0] if on_hero else None)


def lost_after_visible(log: FlightLog, min_pixels: int, seconds: float) -> int:
    """``object_lost`` events answering a frame in which the hero had been visible for more than ``seconds`` in a
    row: the target's "lost while the hero is in plain view"."""
    streak, streaks = 0, {}
    for frame in log.frames:
        streak = streak + 1 if visible(frame, min_pixels) else 0
        streaks[frame.index] = streak * log.frame_interval_s
    return sum(answer.name == LOST and streaks.get(answer.frame, 0.0) > seconds + 1e-9 for answer in log.answers)


def score(log: FlightLog, min_pixels: int) -> dict[str, Any]:
    """The flight's score (`SCORE_KEYS`, see the module docstring)."""
    frames = {frame.index: frame for frame in log.frames}
    seen_at, acquired_at = acquisition_time(log, min_pixels)
    after = [f for f in log.frames if visible(f, min_pixels) and acquired_at is not None and f.t > acquired_at + 1e-9]
    share = None if seen_at is None else 0.0
    if after:
        share = sum(f.mode == FOLLOW and f.on == HERO for f in after) / len(after)
    recorded = [RecordedFrame(f.index, f.t, None, Truth(f.truth_position, visible(f, min_pixels))) for f in log.frames]
    responses = [Response(a.frame, a.name, a.data, 0.0) for a in log.answers]
    summary = summarize(recorded, len(recorded), responses)
    kept = [float(np.linalg.norm((f.drone - f.hero)[:2])) for f in log.frames if f.mode == FOLLOW and f.on == HERO]
    counts = log.counts
    return {
        "acquisition_s": None if seen_at is None or acquired_at is None else round(acquired_at - seen_at, 3),
        "follow_share": None if share is None else round(share, 4),
        "wrong_follow_s": round(
            sum(f.mode == FOLLOW and not visible(f, min_pixels) for f in log.frames) * log.frame_interval_s, 3
        ),
        "wrong_follows": sum(s.mode == FOLLOW and s.toward != HERO for s in log.switches),
        "lost_while_visible": sum(
            a.name == LOST and a.frame in frames and visible(frames[a.frame], min_pixels) for a in log.answers
        ),
        "position_error_m": summary["loc_err_m"],
        "distance_kept_m": {"median": round(float(np.median(kept)), 3) if kept else None},
        "frames": {
            "answered": None if counts is None else counts["processed"],
            "dropped": None if counts is None else counts["dropped"],
            "rejected": None if counts is None else counts["rejected"],
        },
    }


def format_score(result: dict[str, Any]) -> str:
    """The score as a two-column table."""

    def number(value: float | None, spec: str = ".2f", unit: str = "") -> str:
        return "-" if value is None else f"{value:{spec}}{unit}"

    error, frames = result["position_error_m"], result["frames"]
    share = result["follow_share"]
    rows = [
        ("acquisition (hero first visible → FOLLOW on it)", number(result["acquisition_s"], ".1f", " s")),
        ("FOLLOW on the hero, share of its visible time", "-" if share is None else f"{share:.1%}"),
        ("FOLLOW while the hero is not visible", number(result["wrong_follow_s"], ".1f", " s")),
        ("FOLLOW entered on a bystander or nothing", str(result["wrong_follows"])),
        ("object_lost while the hero is visible", str(result["lost_while_visible"])),
        (
            "position error, median / p90",
            f"{number(error['median'], '.2f', ' m')} / {number(error['p90'], '.2f', ' m')}",
        ),
        ("distance kept to the hero, median", number(result["distance_kept_m"]["median"], ".2f", " m")),
        ("frames answered / dropped / rejected", " / ".join(number(frames[k], "d") for k in frames)),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
