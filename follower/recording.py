"""Recording the server's conversations as flight files (`sim_bridge.flight`), one per connection.

``--record DIR`` (``FOLLOWER_RECORD``) writes every connection that sends a frame into
``DIR/<UTC time>.flight.jsonl.gz``: each ``sensor_frame`` as received, with its receive time, the tracker's
decision on each processed frame (`follower.tracking.Decision`: candidate, confirmed, coasting, lost, ...), and
each event sent back, with its send time and the index of the frame it answers. A write error (disk full, permissions)
stops all recording with one warning; serving goes on.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from follower.config import FollowerConfig
from follower.tracking import Decision
from sim_bridge.flight import FlightWriter
from sim_bridge.protocol import Event

logger = logging.getLogger("follower")

SUFFIX = ".flight.jsonl.gz"
RECENT_FRAMES = 8  # frames per connection whose index an event can still be matched to


class _Connection:
    """One connection's open flight and its last few frames, to match events to the frame they answer."""

    def __init__(self, writer: FlightWriter) -> None:
        self.writer = writer
        self.recent: deque[tuple[Any, int]] = deque(maxlen=RECENT_FRAMES)

    def index_of(self, message: Any) -> int | None:
        """The index of a recent frame payload (by identity), or None."""
        return next((index for payload, index in self.recent if payload is message), None)


class Recorder:
    """Writes each connection's frames and events into its own flight file in ``directory``.

    With ``directory`` None it records nothing; after a write error it records nothing more. ``clock`` gives
    the times written (epoch seconds).
    """

    def __init__(
        self,
        directory: str | Path | None,
        source: str = "follower.serve",
        intrinsics: Mapping[str, float | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = None if directory is None else Path(directory)
        self.source = source
        self.intrinsics = intrinsics
        self.clock = clock
        self.failed = False
        self._connections: dict[str, _Connection] = {}

    @classmethod
    def from_config(cls, config: FollowerConfig, source: str = "follower.serve") -> Recorder:
        """A recorder for the ``RECORD`` setting (empty: off) with the configured intrinsics."""
        intrinsics = {"fx": config.fx, "fy": config.fy, "cx": config.cx, "cy": config.cy}
        return cls(config.record or None, source, intrinsics)

    @property
    def active(self) -> bool:
        """Whether frames are being recorded."""
        return self.directory is not None and not self.failed

    def frame(self, sid: str, message: Any) -> None:
        """Record a ``sensor_frame`` payload from ``sid`` as received now, opening its flight if needed."""
        if not self.active:
            return
        connection = self._connections.get(sid)
        try:
            connection = connection or self._open(sid)
            index = connection.writer.write_frame(self.clock(), message)
        except OSError as error:
            self._fail(error, connection)
            return
        connection.recent.append((message, index))

    def event(self, sid: str, event: Event, message: Any = None) -> None:
        """Record an event sent to ``sid`` now, in answer to the frame payload ``message`` when given."""
        self._append(sid, message, lambda writer, t, frame: writer.write_event(t, event.name, event.data, frame))

    def decision(self, sid: str, decision: Decision, message: Any = None) -> None:
        """Record the tracker's decision on the frame payload ``message`` from ``sid``, now."""
        self._append(sid, message, lambda writer, t, frame: writer.write_decision(t, decision.to_json(), frame))

    def _append(self, sid: str, message: Any, write: Callable[[FlightWriter, float, int | None], None]) -> None:
        """``write(writer, now, index of the frame payload message)`` into the open flight of ``sid``, if any."""
        connection = self._connections.get(sid)
        if not self.active or connection is None:
            return
        try:
            write(connection.writer, self.clock(), connection.index_of(message))
        except OSError as error:
            self._fail(error, connection)

    def close(self, sid: str) -> None:
        """Finish the flight of a connection that went away."""
        connection = self._connections.pop(sid, None)
        if connection is not None:
            self._close(connection)

    def close_all(self) -> None:
        """Finish every open flight (at shutdown)."""
        for sid in list(self._connections):
            self.close(sid)

    def _open(self, sid: str) -> _Connection:
        """Create the flight file of a new connection; raises OSError."""
        directory = self.directory
        if directory is None:
            raise RuntimeError(f"cannot record client {sid}: recording is off (no directory)")
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        path = directory / f"{stamp}{SUFFIX}"
        for attempt in range(1, 100):
            try:
                writer = FlightWriter(path, self.source, self.intrinsics)
                break
            except FileExistsError:
                path = directory / f"{stamp}-{attempt}{SUFFIX}"
        else:
            raise FileExistsError(f"no free name for {path}")
        logger.info("Recording client %s into %s", sid, path)
        self._connections[sid] = _Connection(writer)
        return self._connections[sid]

    def _close(self, connection: _Connection) -> None:
        """Close a flight, reporting (not raising) an error."""
        try:
            connection.writer.close()
        except OSError as error:
            self._fail(error, connection)

    def _fail(self, error: OSError, connection: _Connection | None) -> None:
        """Stop recording for good, with one warning naming the file (or the directory)."""
        if self.failed:
            return
        self.failed = True
        where = connection.writer.path if connection is not None else error.filename or self.directory
        logger.warning(
            "Recording stopped: cannot write %s: %s; serving continues without recording",
            where, error.strerror or error,
        )  # fmt: skip
        for open_connection in self._connections.values():
            with contextlib.suppress(OSError):  # already reported: recording has stopped
                open_connection.writer.close()
        self._connections.clear()
