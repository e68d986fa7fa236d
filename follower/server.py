"""The socket layer: a python-socketio server on eventlet, with Flask beside it for ``GET /healthz``, the
live page (`follower.dashboard`) and ``GET /metrics`` (`follower.metrics`).

It only moves messages: each connection has its own follower (`follower.connections`), and a ``sensor_frame``
goes into its connection's single slot; whichever handler finds the network idle runs the pipeline on the next
connection's newest waiting frame, in turn, in the server's one native worker thread (`follower.worker`), emits
the resulting events to that frame's sender only, and repeats until every slot is empty. The hub never runs the
network, and a frame that waits while a newer one of its connection arrives is dropped, so latency cannot
accumulate. Beyond ``--max-connections`` simulators, a new one is refused with a log line and disconnected.
Each frame's way is timed stage by stage, from its arrival on the hub to its events queued for the socket
(`follower.metrics.STAGES`).

Malformed packets: a WebSocket message that is not an Engine.IO packet, a binary message or binary event (the
simulator sends text only; a binary event's attachments are never awaited) and a Socket.IO packet that does not
decode, or an event without a name, are dropped with one warning line (rate-limited per kind, counted in
``/healthz``), and the connection is kept: the simulator's next frame is served as usual. Engine.IO's own
limits still close a connection (a message over `MAX_MESSAGE_BYTES`, a WebSocket protocol error).
"""

from __future__ import annotations

import logging
import reprlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import flask
import socketio
from engineio import packet as eio_packet
from engineio import socket as eio_socket
from eventlet import tpool

from follower import dashboard, metrics
from follower.config import FollowerConfig
from follower.connections import Connections
from follower.pipeline import FrameResult, Segment, Settings, process_frame
from follower.recording import Recorder
from follower.state import FollowerState, Pending
from follower.tracking import TrackerSettings, make_tracker
from follower.worker import WorkerThread
from sim_bridge.protocol import SENSOR_FRAME, ProtocolError

logger = logging.getLogger("follower")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
ENGINE_PACKET_TYPES = "0123456"  # Engine.IO 4: OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP
BINARY_PACKET_TYPES = "56"  # Socket.IO: BINARY_EVENT, BINARY_ACK

# (engine session id, kind of packet, what is wrong with it), for a packet dropped unread.
ReportPacket = Callable[[str, str, str], None]

_preview = reprlib.Repr()  # short reprs of what a client sent, for log lines
_preview.maxstring = _preview.maxother = 100


def engine_packet_problem(message: str | bytes | None) -> str | None:
    """What makes a WebSocket message unreadable as an Engine.IO packet, or None (binary messages and the
    end of the connection, None, are readable)."""
    if not isinstance(message, str):
        return None
    if not message:
        return "empty message"
    if message[0] not in ENGINE_PACKET_TYPES:
        return f"unknown packet type {message[:1]!r}"
    return None


class _CheckedWebSocket:
    """A WebSocket whose `wait` skips the messages that are not Engine.IO packets, reporting each.

    engine.io decodes a message before its reading loop's error handling: one that does not decode ends the
    loop with an exception and leaves the session open for good, and shutting down then waits forever on its
    queue.
    """

    def __init__(self, ws: Any, sid: str, report: ReportPacket) -> None:
        self._ws = ws
        self._sid = sid
        self._report = report

    def wait(self) -> str | bytes | None:
        """The next Engine.IO packet (None when the connection ends)."""
        while True:
            message = self._ws.wait()
            problem = engine_packet_problem(message)
            if problem is None:
                return message
            self._report(self._sid, "Engine.IO", problem)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


class _SimulatorSocket(eio_socket.Socket):
    """An Engine.IO socket that answers its client's PING with a PONG, as the simulator expects, and skips
    WebSocket messages that are not Engine.IO packets (``report_packet`` says so).

    Engine.IO 4 servers send the PINGs themselves and ignore a client's; the simulator sends its own every
    25 s and counts every PING or PONG it receives as a sign of life.
    """

    report_packet: ReportPacket

    def receive(self, pkt: eio_packet.Packet) -> None:
        """Handle one packet from the client."""
        if pkt.packet_type == eio_packet.PING:
            self.send(eio_packet.Packet(eio_packet.PONG, data=pkt.data))
        else:
            super().receive(pkt)

    def _websocket_handler(self, ws: Any) -> list:
        return super()._websocket_handler(_CheckedWebSocket(ws, self.sid, self.report_packet))


class SimulatorServer(socketio.Server):
    """A Socket.IO server that also serves the simulator's old client.

    That client never sends the Socket.IO CONNECT packet: its first event connects its engine session to
    ``/`` implicitly, as socket.io v2 servers did. Clients that do send CONNECT are served as usual. Malformed
    packets are dropped (see the module docstring) and reported to ``report_packet``.
    """

    def __init__(self, *args: Any, report_packet: ReportPacket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.report_packet = report_packet

    def _handle_eio_connect(self, eio_sid: str, environ: dict) -> Any:
        """Accept an engine session, with a socket that answers the client's PINGs and skips non-packets."""
        result = super()._handle_eio_connect(eio_sid, environ)
        engine_socket = self.eio.sockets.get(eio_sid)
        if type(engine_socket) is eio_socket.Socket:
            engine_socket.__class__ = _SimulatorSocket
            engine_socket.report_packet = self.report_packet
        return result

    def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """Dispatch one Socket.IO packet, or drop it with a report: binary, or one that does not decode."""
        if isinstance(data, (bytes, bytearray)) or (isinstance(data, str) and data[:1] in BINARY_PACKET_TYPES):
            self.report_packet(eio_sid, "binary", "the simulator sends text only")
            return
        try:
            super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, IndexError, KeyError, RecursionError) as error:
            self.report_packet(eio_sid, "Socket.IO", f"{type(error).__name__}: {_preview.repr(str(error))}")

    def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        """Connect ``/`` first for an engine session that sends an event without having connected it; close the
        session when that connection is refused (the simulator would send every frame into the void)."""
        if not (isinstance(data, list) and data and isinstance(data[0], str)):
            raise ValueError(f"an event must be a list that starts with its name. Received: {_preview.repr(data)}")
        namespace = namespace or "/"
        if namespace == "/" and self.manager.sid_from_eio_sid(eio_sid, namespace) is None:
            logger.info("Engine session %s sent an event without CONNECT: connecting it to / implicitly", eio_sid)
            self._handle_connect(eio_sid, namespace, None)
            if self.manager.sid_from_eio_sid(eio_sid, namespace) is None:
                self._close_engine_session(eio_sid)
                return
        super()._handle_event(eio_sid, namespace, id, data)

    def _close_engine_session(self, eio_sid: str) -> None:
        """Send CLOSE to an engine session without waiting for its writer, and forget it."""
        engine_socket = self.eio.sockets.pop(eio_sid, None)
        if engine_socket is not None:
            engine_socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)


@dataclass(frozen=True)
class Processed:
    """What the worker thread hands back: the pipeline's result or its error, and when (`time.perf_counter`
    seconds) the worker started and finished the frame."""

    result: FrameResult | None
    error: BaseException | None
    started: float
    finished: float


class FollowerServer:
    """The Socket.IO server, the Flask app and the connections' followers, wired together.

    ``wsgi_app`` is what the web server runs; `start_background_tasks` starts the statistics line. Building one
    changes nothing outside it: whoever runs it on eventlet's web server installs `follower.websocket_mask`
    (`follower.serve` does).
    """

    def __init__(self, segment: Segment, config: FollowerConfig, model_info: Mapping[str, Any]) -> None:
        self.segment = segment
        self.config = config
        self.settings = Settings.from_config(config)
        self.recorder = Recorder.from_config(config, f"follower.serve {model_info.get('model', '')}".rstrip())
        self.model_info = dict(model_info)
        tracker_settings = TrackerSettings.from_config(config)
        self.connections = Connections(
            lambda: make_tracker(tracker_settings), config.max_connections, config.warn_interval
        )
        self.worker = WorkerThread()
        self.sio = SimulatorServer(
            async_mode="eventlet",
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            max_http_buffer_size=MAX_MESSAGE_BYTES,
            report_packet=self.connections.bad_packet,
        )
        self.sio.on("connect", self._handle_connect)
        self.sio.on("disconnect", self._handle_disconnect)
        self.sio.on(SENSOR_FRAME, self._handle_sensor_frame)
        self.app = flask.Flask("follower")
        self.app.add_url_rule("/healthz", "healthz", self._handle_healthz)
        self.metrics = metrics.FollowerMetrics(self.connections)
        self.dashboard = dashboard.Dashboard(
            self.connections, config.port, self.settings.threshold, sleep=self.sio.sleep, offload=tpool.execute
        )
        self.app.register_blueprint(metrics.blueprint(self.metrics))
        self.app.register_blueprint(dashboard.blueprint(self.dashboard))
        self.wsgi_app = socketio.WSGIApp(self.sio, self.app)

    def start_background_tasks(self) -> None:
        """Start the periodic statistics line."""
        self.sio.start_background_task(self._log_stats)

    def disconnect_all(self) -> None:
        """Close every client's connection (at shutdown), the dashboard's streams included.

        Each engine session is sent CLOSE without waiting for it to go out: engine.io's own `disconnect` waits
        for each session's writer, which may be gone.
        """
        self.dashboard.close()
        for engine_socket in list(self.sio.eio.sockets.values()):
            engine_socket.close(wait=False, reason=self.sio.eio.reason.SERVER_DISCONNECT)
        self.sio.eio.sockets.clear()
        self.recorder.close_all()

    def _handle_connect(self, sid: str, environ: dict, auth: Any = None) -> bool:
        address = environ.get("REMOTE_ADDR", "?")
        if not self.connections.connect(sid, address, self.sio.manager.eio_sid_from_sid(sid, "/")):
            return False
        logger.info("Client %s connected from %s (%d connected)", sid, address, len(self.connections))
        return True

    def _handle_disconnect(self, sid: str, reason: Any = None) -> None:
        logger.info("Client %s disconnected (%s)", sid, reason)
        self.connections.disconnect(sid)
        self.dashboard.forget(sid)
        self.recorder.close(sid)

    def _handle_sensor_frame(self, sid: str, message: Any = None, *_extra: Any) -> None:
        self.recorder.frame(sid, message)
        if not self.connections.offer(sid, message):
            return  # another handler is running the loop below and will take this frame in its turn
        while (turn := self.connections.take()) is not None:
            state, pending = turn
            try:
                self._serve(state, pending)
            except Exception as error:  # noqa: BLE001 (one bad frame must not stop the loop)
                state.fail(pending, error)

    def _serve(self, state: FollowerState, pending: Pending) -> None:
        """Process one frame off the hub, then answer it; each stage of its way is timed (`metrics.STAGES`)."""
        queued = state.clock() - pending.received
        handed = time.perf_counter()
        processed = self.worker.run(self._process, pending)
        resumed = time.perf_counter()
        if isinstance(processed.error, ProtocolError):
            state.reject(pending, processed.error)
        elif processed.error is not None:
            state.fail(pending, processed.error)
        elif processed.result is None:
            raise RuntimeError("the worker handed back neither a result nor an error")
        else:
            hops = {"queue": queued, "to_worker": processed.started - handed, "to_hub": resumed - processed.finished}
            self._answer(state, pending, processed.result, {**hops, **processed.result.timings}, resumed)

    def _answer(
        self, state: FollowerState, pending: Pending, result: FrameResult, stage_seconds: dict[str, float],
        resumed: float,
    ) -> None:  # fmt: skip
        """Decide on a processed frame with its connection's follower, send the events to that connection only,
        and record, count and show it."""
        events = state.complete(pending, result)
        assert state.last_decision is not None and state.last_latency_s is not None  # complete() sets both
        self.recorder.decision(pending.sid, state.last_decision, pending.message)
        decided = time.perf_counter()
        for event in events:
            self.sio.emit(event.name, event.data, to=pending.sid)
            self.recorder.event(pending.sid, event, pending.message)
        emitted = time.perf_counter()
        stage_seconds.update(decide=decided - resumed, emit=emitted - decided)
        self.metrics.observe(stage_seconds, state.last_latency_s)
        self.dashboard.observe(pending.sid, state, result)

    def _process(self, pending: Pending) -> Processed:
        """Run the pipeline (in a native thread); errors come back as values, never raised across threads."""
        started = time.perf_counter()
        try:
            result = process_frame(pending.message, self.segment, self.settings)
        except Exception as error:  # noqa: BLE001 (reported by the caller, on the hub)
            # Returned from here, where ``error`` goes with the block: kept as a local, it would hold this frame,
            # the frame its message (15 MB, say), until the garbage collector found the cycle.
            return Processed(None, error, started, time.perf_counter())
        return Processed(result, None, started, time.perf_counter())

    def _handle_healthz(self) -> flask.Response:
        return flask.jsonify({**self.connections.health(flask.request.args.get("connection")), **self.model_info})

    def _log_stats(self) -> None:
        while True:
            self.sio.sleep(self.config.stats_interval)
            line = self.connections.stats_line()
            if line:
                logger.info("%s", line)
