"""The socket layer: a python-socketio server on eventlet, with Flask beside it for ``GET /healthz``, the
live page (`follower.dashboard`) and ``GET /metrics`` (`follower.metrics`).

It only moves messages: a ``sensor_frame`` goes into the `FollowerState`'s single slot; whichever handler
finds the follower idle runs the pipeline on the newest waiting frame in a native thread (eventlet's tpool),
emits the resulting events to the frame's sender, and repeats until the slot is empty. The hub never runs
the network, and a frame that waits while a newer one arrives is dropped, so latency cannot accumulate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import flask
import socketio
from engineio import packet as eio_packet
from engineio import socket as eio_socket
from eventlet import tpool

from follower import dashboard, metrics, websocket_mask
from follower.pipeline import FrameResult, Segment, Settings, process_frame
from follower.recording import Recorder
from follower.state import FollowerState, Pending
from follower.tracking import TrackerSettings, make_tracker
from sim_bridge.protocol import SENSOR_FRAME, ProtocolError

logger = logging.getLogger("follower")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class _SimulatorSocket(eio_socket.Socket):
    """An Engine.IO socket that answers its client's PING with a PONG, as the simulator expects.

    Engine.IO 4 servers send the PINGs themselves and ignore a client's; the simulator sends its own every
    25 s and counts every PING or PONG it receives as a sign of life.
    """

    def receive(self, pkt: eio_packet.Packet) -> None:
        """Handle one packet from the client."""
        if pkt.packet_type == eio_packet.PING:
            self.send(eio_packet.Packet(eio_packet.PONG, data=pkt.data))
        else:
            super().receive(pkt)


class SimulatorServer(socketio.Server):
    """A Socket.IO server that also serves the simulator's old client.

    That client never sends the Socket.IO CONNECT packet: its first event connects its engine session to
    ``/`` implicitly, as socket.io v2 servers did. Clients that do send CONNECT are served as usual.
    """

    def _handle_eio_connect(self, eio_sid: str, environ: dict) -> Any:
        """Accept an engine session, with a socket that answers the client's PINGs."""
        result = super()._handle_eio_connect(eio_sid, environ)
        engine_socket = self.eio.sockets.get(eio_sid)
        if type(engine_socket) is eio_socket.Socket:
            engine_socket.__class__ = _SimulatorSocket
        return result

    def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: list) -> None:
        """Connect ``/`` first for an engine session that sends an event without having connected it."""
        namespace = namespace or "/"
        if namespace == "/" and self.manager.sid_from_eio_sid(eio_sid, namespace) is None:
            logger.info("Engine session %s sent an event without CONNECT: connecting it to / implicitly", eio_sid)
            self._handle_connect(eio_sid, namespace, None)
        super()._handle_event(eio_sid, namespace, id, data)


class FollowerServer:
    """The Socket.IO server, the Flask app and the follower's state, wired together.

    ``wsgi_app`` is what the web server runs; `start_background_tasks` starts the statistics line.
    """

    def __init__(self, segment: Segment, config: Mapping[str, Any], model_info: Mapping[str, Any]) -> None:
        websocket_mask.install()
        self.segment = segment
        self.config = dict(config)
        self.settings = Settings.from_config(config)
        self.recorder = Recorder.from_config(config, f"follower.serve {model_info.get('model', '')}".rstrip())
        self.model_info = dict(model_info)
        tracker = make_tracker(TrackerSettings.from_config(config))
        self.state = FollowerState(tracker, warn_interval=config["WARN_INTERVAL"])
        self.sio = SimulatorServer(
            async_mode="eventlet",
            ping_interval=config["PING_INTERVAL"],
            ping_timeout=config["PING_TIMEOUT"],
            max_http_buffer_size=MAX_MESSAGE_BYTES,
        )
        self.sio.on("connect", self._handle_connect)
        self.sio.on("disconnect", self._handle_disconnect)
        self.sio.on(SENSOR_FRAME, self._handle_sensor_frame)
        self.app = flask.Flask("follower")
        self.app.add_url_rule("/healthz", "healthz", self._handle_healthz)
        self.metrics = metrics.FollowerMetrics(self.state)
        self.dashboard = dashboard.Dashboard(
            self.state, config["PORT"], self.settings.threshold, sleep=self.sio.sleep, offload=tpool.execute
        )
        self.app.register_blueprint(metrics.blueprint(self.metrics))
        self.app.register_blueprint(dashboard.blueprint(self.dashboard))
        self.wsgi_app = socketio.WSGIApp(self.sio, self.app)

    def start_background_tasks(self) -> None:
        """Start the periodic statistics line."""
        self.sio.start_background_task(self._log_stats)

    def disconnect_all(self) -> None:
        """Close every client's connection (at shutdown), the dashboard's streams included."""
        self.dashboard.close()
        self.sio.eio.disconnect()
        self.recorder.close_all()

    def _handle_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        logger.info("Client %s connected from %s", sid, environ.get("REMOTE_ADDR", "?"))

    def _handle_disconnect(self, sid: str, reason: Any = None) -> None:
        logger.info("Client %s disconnected (%s)", sid, reason)
        self.state.disconnected(sid)
        self.recorder.close(sid)

    def _handle_sensor_frame(self, sid: str, message: Any = None, *_extra: Any) -> None:
        self.recorder.frame(sid, message)
        if not self.state.offer(sid, message):
            return  # another handler is running the loop below and will take this frame next
        while (pending := self.state.take()) is not None:
            try:
                self._serve(pending)
            except Exception as error:  # noqa: BLE001 (one bad frame must not stop the loop)
                self.state.fail(pending, error)

    def _serve(self, pending: Pending) -> None:
        """Process one frame off the hub, then send its events back to its sender."""
        result, error = tpool.execute(self._process, pending)
        if isinstance(error, ProtocolError):
            self.state.reject(pending, error)
        elif error is not None:
            self.state.fail(pending, error)
        else:
            events = self.state.complete(pending, result)
            self.recorder.decision(pending.sid, self.state.last_decision, pending.message)
            for event in events:
                self.sio.emit(event.name, event.data, to=pending.sid)
                self.recorder.event(pending.sid, event, pending.message)
            self.metrics.observe(result, self.state.last_latency_s)
            self.dashboard.observe(result, self.state.last_latency_s)

    def _process(self, pending: Pending) -> tuple[FrameResult | None, BaseException | None]:
        """Run the pipeline (in a native thread); errors come back as values, never raised across threads."""
        try:
            return process_frame(pending.message, self.segment, self.settings), None
        except Exception as error:  # noqa: BLE001 (reported by the caller, on the hub)
            return None, error

    def _handle_healthz(self) -> flask.Response:
        return flask.jsonify({**self.state.health(), **self.model_info})

    def _log_stats(self) -> None:
        while True:
            self.sio.sleep(self.config["STATS_INTERVAL"])
            line = self.state.stats_line()
            if line:
                logger.info("%s", line)
