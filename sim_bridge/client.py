"""A client that speaks exactly like QuadSim's old socket.io client (see ../shared/quadsim/PROTOCOL.md).

Over a raw WebSocket (``/socket.io/?EIO=4&transport=websocket``, no long-polling handshake) it reads ``sid``
from the Engine.IO OPEN packet (``0{...}``), never sends the Socket.IO CONNECT packet (``40``), emits events as
``42["name", {...}]`` on the default namespace, sends its own PING (``2``) every ``ping_interval`` seconds
(25 s in the simulator) and answers the server's PINGs with PONGs (``3``). Replays and tests share it.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import websocket

SIMULATOR_PING_INTERVAL_S = 25.0
ENGINE_IO_PATH = "/socket.io/?EIO=4&transport=websocket"

OnEvent = Callable[[str, Any, float], None]


class ClientError(ConnectionError):
    """The server cannot be reached or does not speak Engine.IO."""


def websocket_url(url: str) -> str:
    """The simulator's WebSocket URL for a server at ``http://host:port`` (or ``ws://host:port``).

    >>> websocket_url("http://127.0.0.1:4567")
    'ws://127.0.0.1:4567/socket.io/?EIO=4&transport=websocket'
    """
    parts = urllib.parse.urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"url must look like http://host:port. Received: url={url!r}")
    return f"{scheme}://{parts.netloc}{ENGINE_IO_PATH}"


class SimulatorClient:
    """One simulator connection. Events from the server go to ``on_event(name, data, arrival)`` (arrival in
    ``time.monotonic()`` seconds, called on the reader thread) or, by default, into the ``events`` queue as
    ``(name, data)``. ``server_pings``, ``pongs`` and ``other`` (any other packet) are kept for inspection.
    """

    def __init__(
        self,
        url: str,
        on_event: OnEvent | None = None,
        ping_interval: float | None = SIMULATOR_PING_INTERVAL_S,
        timeout: float = 10.0,
    ) -> None:
        try:
            self.ws = websocket.create_connection(
                websocket_url(url), timeout=timeout, suppress_origin=True, enable_multithread=True
            )
            opening = self.ws.recv()
        except (OSError, websocket.WebSocketException) as error:
            raise ClientError(f"cannot connect to {url}: {error}") from error
        if not isinstance(opening, str) or not opening.startswith("0"):
            self.ws.close()
            raise ClientError(f"{url} did not open an Engine.IO session: first packet {opening!r}")
        self.sid = json.loads(opening[1:])["sid"]
        self.ws.settimeout(None)  # the reader waits for as long as the connection lives
        self.events: queue.Queue = queue.Queue()
        self.on_event = on_event or (lambda name, data, _arrival: self.events.put((name, data)))
        self.server_pings = 0
        self.pongs = 0
        self.other: list[str | bytes] = []
        self.closed = threading.Event()
        self._pong = threading.Condition()
        self._pong_arrival = 0.0
        self._threads = [threading.Thread(target=self._read, daemon=True)]
        if ping_interval is not None:
            self._threads.append(threading.Thread(target=self._ping_every, args=(ping_interval,), daemon=True))
        for thread in self._threads:
            thread.start()

    def emit(self, name: str, data: Any) -> None:
        """Send an event on the default namespace, without ever having connected it."""
        self.ws.send("42" + json.dumps([name, data]))

    def ping(self) -> None:
        """Send an Engine.IO PING, as the simulator does every 25 s."""
        self.ws.send("2")

    def round_trip(self, timeout: float = 5.0) -> float:
        """Send a PING and wait for its PONG: the seconds between, the socket's round trip without any event (the
        server queues the PONG behind every event it queued before). Raises TimeoutError when no PONG comes within
        ``timeout`` seconds or the connection closes first."""
        with self._pong:
            pongs = self.pongs
            sent = time.monotonic()
            self.ping()
            self._pong.wait_for(lambda: self.pongs > pongs or self.closed.is_set(), timeout)
            if self.pongs == pongs:
                why = "the connection closed" if self.closed.is_set() else f"none came within {timeout} s"
                raise TimeoutError(f"no PONG from the server: {why}")
            return self._pong_arrival - sent

    def close(self) -> None:
        """Close the WebSocket and stop the threads."""
        self.closed.set()
        self.ws.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> SimulatorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self) -> None:
        while True:
            try:
                message = self.ws.recv()
            except (websocket.WebSocketException, OSError):
                self.closed.set()
                with self._pong:
                    self._pong.notify_all()
                return
            arrival = time.monotonic()
            if isinstance(message, bytes):  # a binary frame: none of the packets above
                self.other.append(message)
            elif message == "2":
                self.server_pings += 1
                self.ws.send("3")
            elif message.startswith("3"):
                with self._pong:
                    self.pongs += 1
                    self._pong_arrival = arrival
                    self._pong.notify_all()
            elif message.startswith("42"):
                name, *data = json.loads(message[2:])
                self.on_event(name, data[0] if data else None, arrival)
            else:
                self.other.append(message)

    def _ping_every(self, interval: float) -> None:
        while not self.closed.wait(interval):
            try:
                self.ping()
            except (websocket.WebSocketException, OSError):
                return
