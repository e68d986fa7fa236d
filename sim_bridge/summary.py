"""What a server answered to a flight, summarised: the same report for a network replay and an in-process one.

No I/O here. A `Response` is one event the server sent, attributed to the frame it answers, with its latency
(seconds from sending that frame to receiving the event). `summarize` turns a flight's frames and the
responses into a JSON-ready dict; `format_summary` into the lines printed by the replay commands.

Summary keys: ``frames_sent``; ``events`` ``{name: count}``; ``transitions`` ``[{"frame", "event"}]`` (``found``:
an ``object_detected`` at the start or after an ``object_lost``; ``lost``: an ``object_lost``); ``latency_ms``
``{"p50", "p90"}`` over the frames that got at least one event, the first event's latency (null when none
did); ``frames_answered``. With truth only: ``loc_err_m`` ``{"median", "p90"}``, the distance (m) from each
``object_detected`` position to its frame's true target position, and ``visible_not_reported``, the indices
of frames whose target was visible and that got no ``object_detected``. `format_summary` also prints the
keys the replays add: ``frames_processed``, ``frames_dropped``, ``frames_rejected``, ``frames_failed`` (what the
server made of the frames; `follower.replay` adds only ``frames_rejected``), ``decisions`` (frames per tracker
status) and ``frames_per_s``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim_bridge.flight import RecordedFrame

DETECTED = "object_detected"
LOST = "object_lost"
FRAME_ENDS = ("processed", "dropped", "rejected", "failed")


@dataclass(frozen=True)
class Response:
    """An event from the server: the frame index it answers, its name and payload, its latency (s)."""

    frame: int
    name: str
    data: Any
    latency_s: float


def summarize(frames: Sequence[RecordedFrame], frames_sent: int, responses: Sequence[Response]) -> dict[str, Any]:
    """The summary of a replay of ``frames`` (see the module docstring for its keys)."""
    transitions = []
    following = False
    first_latency: dict[int, float] = {}
    for response in responses:
        first_latency.setdefault(response.frame, response.latency_s)
        if response.name == DETECTED and not following:
            transitions.append({"frame": response.frame, "event": "found"})
            following = True
        elif response.name == LOST:
            transitions.append({"frame": response.frame, "event": "lost"})
            following = False
    latencies_ms = np.array(list(first_latency.values())) * 1000.0
    summary: dict[str, Any] = {
        "frames_sent": frames_sent,
        "events": dict(sorted(Counter(response.name for response in responses).items())),
        "transitions": transitions,
        "latency_ms": _percentiles(latencies_ms, ("p50", 50), ("p90", 90)),
        "frames_answered": len(first_latency),
    }
    truths = {frame.index: frame.truth for frame in frames if frame.truth is not None}
    if truths:
        detections = [response for response in responses if response.name == DETECTED]
        errors = [
            float(np.linalg.norm(np.asarray(response.data["coords"]) - truths[response.frame].position))
            for response in detections
            if response.frame in truths and truths[response.frame].position is not None
        ]
        reported = {response.frame for response in detections}
        summary["loc_err_m"] = _percentiles(np.array(errors), ("median", 50), ("p90", 90))
        summary["visible_not_reported"] = sorted(
            index for index, truth in truths.items() if truth.visible and index not in reported and index < frames_sent
        )
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few human-readable lines."""
    events = ", ".join(f"{name} {count}" for name, count in summary["events"].items()) or "none"
    transitions = ", ".join(f"{t['event']} at frame {t['frame']}" for t in summary["transitions"]) or "none"
    latency = summary["latency_ms"]
    lines = [
        f"frames sent: {summary['frames_sent']}",
        f"events: {events}",
        f"transitions: {transitions}",
        f"response latency: p50 {_number(latency['p50'], 'ms')}, p90 {_number(latency['p90'], 'ms')} "
        f"({summary['frames_answered']} frames answered)",
    ]
    if "loc_err_m" in summary:
        error = summary["loc_err_m"]
        missed = summary["visible_not_reported"]
        lines.append(
            f"localization error: median {_number(error['median'], 'm', 3)}, p90 {_number(error['p90'], 'm', 3)}"
        )
        lines.append(f"visible but not reported: {len(missed)} frames ({format_ranges(missed) or '-'})")
    ends = [f"{summary[f'frames_{end}']} {end}" for end in FRAME_ENDS if f"frames_{end}" in summary]
    if ends:
        lines.append(f"frames at the server: {', '.join(ends)}")
    if "decisions" in summary:
        decisions = ", ".join(f"{status} {count}" for status, count in summary["decisions"].items()) or "none"
        lines.append(f"tracker decisions (frames): {decisions}")
    if "frames_per_s" in summary:
        lines.append(f"throughput: {summary['frames_per_s']:.1f} frames/s")
    return "\n".join(lines)


def format_ranges(indices: Sequence[int]) -> str:
    """Sorted integers as compact ranges.

    >>> format_ranges([1, 2, 3, 7, 9, 10])
    '1-3, 7, 9-10'
    """
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def _percentiles(values: np.ndarray, *names: tuple[str, float]) -> dict[str, float | None]:
    """``{name: percentile}`` of ``values``, rounded, or None each when there are no values."""
    if values.size == 0:
        return {name: None for name, _ in names}
    return {name: round(float(np.percentile(values, q)), 4) for name, q in names}


def _number(value: float | None, unit: str, digits: int = 1) -> str:
    """A value with its unit, or ``-``."""
    return "-" if value is None else f"{value:.{digits}f} {unit}"
