"""One connection's follower state between frames, apart from the sockets (`follower.connections` keeps one
per simulator connection).

A `FollowerState` holds its connection's newest waiting frame (a single slot: a newer frame replaces a waiting
one, which is dropped and counted; nothing queues), its tracker (`follower.tracking`) and last decision, the
`follower.answers.Answerer` that turns decisions into events and numbers the connection's box markers, and its
counters, which it also adds to the process-wide `Totals` (with the latencies since the last statistics line).
It writes the follower's log lines: "Target found!", "Target switched", "Target lost!", rate-limited warnings
for rejected frames. Time comes from ``clock`` (seconds, monotonic) so tests can drive it.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from follower.answers import Answerer
from follower.pipeline import FrameResult
from follower.tracking import Decision, KalmanTracker, Mode, Status, Tracker
from sim_bridge.protocol import Event, ProtocolError

logger = logging.getLogger("follower")

COUNTERS = ("received", "processed", "dropped", "rejected", "errors", "detections", "found", "lost", "bad_packets")
FRAME_COUNTERS = tuple(name for name in COUNTERS if name != "bad_packets")  # counted per connection too
# Tracker counters: frames whose decision had this status, and detections outside the followed target's gate.
STATUS_COUNTERS = {
    Status.CANDIDATE: "candidate_frames",
    Status.COASTING: "coasting_frames",
    Status.SWITCHED: "switches",
}
TRACKER_COUNTERS = (*STATUS_COUNTERS.values(), "track_misses")


@dataclass(frozen=True)
class Pending:
    """A frame waiting for the pipeline: who sent it, its raw payload, when it arrived (clock seconds)."""

    sid: str
    message: Any
    received: float


def rejection_reason(error: ProtocolError) -> str:
    """A short label for the kind of a rejected frame: ``NumberFormatError`` → ``number_format``."""
    name = type(error).__name__.removesuffix("Error") or "protocol"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class RateLimiter:
    """Lets one message per key through every ``interval`` seconds and counts the ones it holds back."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[Any, float] = {}
        self._held: Counter = Counter()

    def allow(self, key: Any) -> tuple[bool, int]:
        """(whether to emit now, how many were held back since the last one emitted for ``key``)."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] += 1
            return False, 0
        self._last[key] = now
        return True, self._held.pop(key, 0)

    def unless_held_back(self, key: Any, note: str) -> str | None:
        """None when a message of ``key`` is held back now; else what to append to it: ``note`` with the count
        held back since the last one, or nothing when none was."""
        allowed, held = self.allow(key)
        if not allowed:
            return None
        return note.format(held) if held else ""


class Totals:
    """Process-wide counters, added to by every connection's `FollowerState` (closed ones included), with the
    counts and latencies since the last statistics line."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.counts: Counter = Counter(dict.fromkeys((*COUNTERS, *TRACKER_COUNTERS), 0))
        self.rejections: Counter = Counter()
        self._window_start = clock()
        self._window_counts: Counter = Counter()
        self._window_latencies: list[float] = []

    def count(self, name: str) -> None:
        """Add one to a counter, in the totals and in the statistics window."""
        self.counts[name] += 1
        self._window_counts[name] += 1

    def latency(self, seconds: float) -> None:
        """A processed frame's latency, for the statistics line."""
        self._window_latencies.append(seconds)

    def stats_line(self, modes: str) -> str | None:
        """The statistics since the previous call, or None when no frame arrived meanwhile; ``modes`` says what
        the connections do now."""
        now = self.clock()
        elapsed, counts, latencies = now - self._window_start, self._window_counts, self._window_latencies
        self._window_start, self._window_counts, self._window_latencies = now, Counter(), []
        if not counts["received"]:
            return None
        if latencies:
            p50, p95 = np.percentile(np.array(latencies) * 1000.0, [50, 95])
            latency = f"latency p50 {p50:.1f} ms p95 {p95:.1f} ms"
        else:
            latency = "latency -"
        return (
            f"stats: {counts['processed'] / max(elapsed, 1e-9):.1f} frames/s, {latency}, "
            f"dropped {counts['dropped']}, rejected {counts['rejected']}, {modes} "
            f"(total: {self.counts['processed']} processed, {self.counts['dropped']} dropped, "
            f"{self.counts['rejected']} rejected)"
        )


class FollowerState:
    """Waiting frame, tracker and counters of one connection's follower (the default tracker: a
    `KalmanTracker` with the default settings); ``totals`` gathers the counts of every connection (its own
    when not given)."""

    def __init__(
        self,
        tracker: Tracker | None = None,
        warn_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        totals: Totals | None = None,
    ) -> None:
        self.clock = clock
        self.tracker = tracker or KalmanTracker()
        self.answerer = Answerer()
        self.totals = totals or Totals(clock)
        self.last_decision: Decision | None = None
        self.counts: Counter = Counter(dict.fromkeys((*FRAME_COUNTERS, *TRACKER_COUNTERS), 0))
        self.last_frame_at: float | None = None
        self.last_position: list[float] | None = None
        self.last_latency_s: float | None = None
        self.mode_since = clock()
        self.rejections: Counter = Counter()
        self.last_rejection: str | None = None
        self._waiting: Pending | None = None
        self._warnings = RateLimiter(warn_interval, clock)

    @property
    def mode(self) -> Mode:
        """PATROL or FOLLOW."""
        return self.tracker.mode

    def offer(self, sid: str, message: Any) -> bool:
        """Make a frame the newest waiting one; True when the slot was empty (the connection needs a turn),
        False when it replaced a waiting frame, dropped."""
        now = self.clock()
        self._count("received")
        self.last_frame_at = now
        replaced = self._waiting is not None
        if replaced:
            self._count("dropped")
        self._waiting = Pending(sid, message, now)
        return not replaced

    def take(self) -> Pending | None:
        """The newest waiting frame (the slot is empty afterwards), or None."""
        pending, self._waiting = self._waiting, None
        return pending

    def complete(self, pending: Pending, result: FrameResult) -> list[Event]:
        """Decide on a processed frame: the events to send back to ``pending.sid`` (`follower.answers`)."""
        detection = result.detection
        decision = self.tracker.update(detection, result.frame.timestamp)
        events = self.answerer.answer(decision)
        self.last_decision = decision
        self._count("processed")
        if detection is not None:
            self._count("detections")
        position = None if decision.position is None else [round(c, 3) for c in decision.position]
        if position is not None:
            self.last_position = position
        if decision.status in STATUS_COUNTERS:
            self._count(STATUS_COUNTERS[decision.status])
        if decision.outlier:
            self._count("track_misses")
        if decision.found or decision.lost:
            self.mode_since = self.clock()
        if decision.found:
            self._count("found")
            if position is not None and detection is not None:  # a confirmation always has both
                x, y, z = position
                logger.info(
                    "Target found! at (%.2f, %.2f, %.2f) m, %d px, depth %.1f m",
                    x, y, z, detection.pixels, detection.depth_m,
                )  # fmt: skip
        if decision.status is Status.SWITCHED and position is not None:  # a switch sends the new target's position
            x, y, z = position
            logger.info("Target switched to (%.2f, %.2f, %.2f) m: the followed one went unseen", x, y, z)
        if decision.lost:
            self._count("lost")
            logger.info("Target lost! after %d frames without it", decision.misses)
        self.last_latency_s = self.clock() - pending.received
        self.totals.latency(self.last_latency_s)
        return events

    def reject(self, pending: Pending, error: ProtocolError) -> None:
        """Count a frame that failed validation and warn about it (rate-limited per kind and field)."""
        self._count("rejected")
        reason = rejection_reason(error)
        self.rejections[reason] += 1
        self.totals.rejections[reason] += 1
        self.last_rejection = str(error)
        more = self._warnings.unless_held_back(
            (type(error).__name__, error.field), " ({} more like it since the last warning)"
        )
        if more is not None:
            logger.warning("Rejected sensor_frame from %s: %s%s", pending.sid, error, more)

    def fail(self, pending: Pending, error: BaseException) -> None:
        """Count a frame that broke the pipeline itself, and log it with its traceback (rate-limited)."""
        self._count("errors")
        more = self._warnings.unless_held_back(type(error).__name__, " ({} more since the last report)")
        if more is not None:
            logger.error("Frame from %s failed: %r%s", pending.sid, error, more, exc_info=error)

    def health(self) -> dict[str, Any]:
        """This connection's mode, tracker, counters, latency and freshness, for ``GET /healthz``."""
        age = None if self.last_frame_at is None else round(self.clock() - self.last_frame_at, 3)
        latency = None if self.last_latency_s is None else round(self.last_latency_s * 1000.0, 1)
        return {
            "mode": self.mode.value,
            "tracker": self.tracker.name,
            "tracker_status": "idle" if self.last_decision is None else self.last_decision.status.value,
            "frames_processed": self.counts["processed"],
            "frames_received": self.counts["received"],
            "frames_dropped": self.counts["dropped"],
            "frames_rejected": self.counts["rejected"],
            "frames_failed": self.counts["errors"],
            "last_latency_ms": latency,
            "last_frame_age_s": age,
            "last_position": self.last_position,
        }

    def _count(self, name: str) -> None:
        """Add one to a counter, this connection's and the process-wide one."""
        self.counts[name] += 1
        self.totals.count(name)
