"""Every simulator connection's own follower, and the turns they take on the one network.

Each Socket.IO connection gets a `FollowerState` of its own when it connects: mode, tracker, newest-frame
slot and counters, so one client's frames never change what another is told. The network and its worker
thread are shared. Connections with a frame waiting take turns, one frame each in the order their slots
filled: a simulator that streams fast cannot starve another, and each slot still drops its own stale frames.
At most ``max_connections`` simulators are served at once (the dashboard's page is HTTP, not one of them).
Counters over all connections, closed ones included, are in `totals`; dropped packets are counted there too,
as they are not yet any connection's.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from follower.state import FollowerState, Pending, RateLimiter, Totals
from follower.tracking import Mode, Tracker

logger = logging.getLogger("follower")


class Connections:
    """The followers of the connected simulators, keyed by Socket.IO session id, in the order they connected."""

    def __init__(
        self,
        make_tracker: Callable[[], Tracker],
        max_connections: int = 8,
        warn_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make_tracker = make_tracker
        self.max_connections = max_connections
        self.warn_interval = warn_interval
        self.clock = clock
        self.totals = Totals(clock)
        self.tracker_name = make_tracker().name
        self.last_frame_at: float | None = None
        self.refused = 0
        self.busy = False
        self._states: dict[str, FollowerState] = {}
        self._engine_sids: dict[str, str | None] = {}
        self._turns: deque[str] = deque()
        self._warnings = RateLimiter(warn_interval, clock)

    def __len__(self) -> int:
        return len(self._states)

    def __iter__(self) -> Iterator[tuple[str, FollowerState]]:
        return iter(list(self._states.items()))

    def get(self, sid: str) -> FollowerState | None:
        """The follower of connection ``sid``, or None when it is not (or no longer) connected."""
        return self._states.get(sid)

    def connect(self, sid: str, address: str = "?", engine_sid: str | None = None) -> bool:
        """Give a new connection its follower; False, with a log line, when ``max_connections`` are served.
        ``engine_sid``, its Engine.IO session id, is the one id a client that never sends CONNECT knows."""
        if len(self._states) >= self.max_connections:
            self.refused += 1
            logger.warning(
                "Refused the simulator connection %s from %s: already serving %d (--max-connections %d)",
                sid, address, len(self._states), self.max_connections,
            )  # fmt: skip
            return False
        self._states[sid] = FollowerState(self.make_tracker(), self.warn_interval, self.clock, self.totals)
        self._engine_sids[sid] = engine_sid
        return True

    def disconnect(self, sid: str) -> None:
        """Forget a connection's follower and its waiting frame."""
        state = self._states.pop(sid, None)
        self._engine_sids.pop(sid, None)
        if state is not None and state.mode is Mode.FOLLOW:
            logger.info("Client %s went away while following", sid)

    def offer(self, sid: str, message: Any) -> bool:
        """A frame from connection ``sid`` (ignored when it is not connected); True when no frame is being
        served, so the caller must serve them (`take` until None)."""
        state = self._states.get(sid)
        if state is None:
            return False
        self.last_frame_at = self.clock()
        if state.offer(sid, message):
            self._turns.append(sid)
        if self.busy:
            return False
        self.busy = True
        return True

    def take(self) -> tuple[FollowerState, Pending] | None:
        """The next connection in turn with its newest waiting frame, or None (and no longer busy)."""
        while self._turns:
            state = self._states.get(self._turns.popleft())
            if state is None:  # the connection went away
                continue
            pending = state.take()
            if pending is not None:
                return state, pending
        self.busy = False
        return None

    def main(self, sid: str | None = None) -> tuple[str, FollowerState] | None:
        """The connection shown as the main view: ``sid`` when connected, else the one that connected last."""
        if sid in self._states:
            return sid, self._states[sid]
        if not self._states:
            return None
        last = next(reversed(self._states))
        return last, self._states[last]

    def bad_packet(self, sid: str, kind: str, detail: str) -> None:
        """Count an Engine.IO or Socket.IO packet dropped unread, and warn (rate-limited per ``kind``)."""
        self.totals.count("bad_packets")
        more = self._warnings.unless_held_back(("packet", kind), " ({} more like it since the last warning)")
        if more is not None:
            logger.warning("Dropped a packet from %s: %s: %s%s", sid, kind, detail, more)

    def following(self) -> int:
        """How many connections are in FOLLOW."""
        return sum(state.mode is Mode.FOLLOW for state in self._states.values())

    def stats_line(self) -> str | None:
        """The process-wide statistics since the previous call, or None when no frame arrived meanwhile."""
        return self.totals.stats_line(f"connections {len(self)} ({self.following()} following)")

    def health(self, main_sid: str | None = None) -> dict[str, Any]:
        """``GET /healthz``: the process-wide counters, every connection's figures, and the main connection's
        mode and last position at the top level."""
        counts = self.totals.counts
        main = self.main(main_sid)
        age = None if self.last_frame_at is None else round(self.clock() - self.last_frame_at, 3)
        return {
            "status": "ok",
            "mode": Mode.PATROL.value if main is None else main[1].mode.value,
            "tracker": self.tracker_name,
            "main_connection": None if main is None else main[0],
            "frames_processed": counts["processed"],
            "frames_received": counts["received"],
            "frames_dropped": counts["dropped"],
            "frames_rejected": counts["rejected"],
            "frames_failed": counts["errors"],
            "packets_dropped": counts["bad_packets"],
            "last_frame_age_s": age,
            "last_position": None if main is None else main[1].last_position,
            "max_connections": self.max_connections,
            "connections_refused": self.refused,
            "connections": [
                {"sid": sid, "engine_sid": self._engine_sids[sid], **state.health()}
                for sid, state in self._states.items()
            ],
        }
