"""The private parts of python-socketio, python-engineio and eventlet that the server overrides or relies on
(docs/transport.md): each test names the library, its version and the part, and fails when a release changes it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import io

import engineio
import pytest
import socketio
from engineio import socket as eio_socket
from eventlet import websocket

from follower.server import SimulatorServer, _SimulatorSocket


def as_released(module):
    """A fresh copy of ``module`` as its library defines it, whatever `follower.websocket_mask.install` has done
    to the loaded one in this process."""
    spec = importlib.util.spec_from_file_location(module.__name__, module.__file__)
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


eventlet_websocket = as_released(websocket)
# (distribution, owner, attribute, its signature as tested): every private method overridden or called, and the
# public ones called on objects whose class the server swaps or wraps.
SIGNATURES = [
    # follower.server.SimulatorServer overrides these three and calls the fourth (the implicit CONNECT)
    ("python-socketio", socketio.Server, "_handle_eio_connect", "(self, eio_sid, environ)"),
    ("python-socketio", socketio.Server, "_handle_eio_message", "(self, eio_sid, data)"),
    ("python-socketio", socketio.Server, "_handle_event", "(self, eio_sid, namespace, id, data)"),
    ("python-socketio", socketio.Server, "_handle_connect", "(self, eio_sid, namespace, data)"),
    ("python-socketio", socketio.Manager, "sid_from_eio_sid", "(self, eio_sid, namespace)"),
    ("python-socketio", socketio.Manager, "eio_sid_from_sid", "(self, sid, namespace)"),
    # follower.server._SimulatorSocket, the class swapped onto each engine.io Socket, overrides the first two
    ("python-engineio", eio_socket.Socket, "receive", "(self, pkt)"),
    ("python-engineio", eio_socket.Socket, "_websocket_handler", "(self, ws)"),
    ("python-engineio", eio_socket.Socket, "send", "(self, pkt)"),
    ("python-engineio", eio_socket.Socket, "close", "(self, wait=True, abort=False, reason=None)"),
    # follower.websocket_mask replaces the first and subclasses the second; _CheckedWebSocket wraps the wait
    ("eventlet", eventlet_websocket.RFC6455WebSocket, "_apply_mask", "(data, mask, length=None, offset=0)"),
    ("eventlet", eventlet_websocket.RFC6455WebSocket.Message, "push", "(self, data, final=False)"),
    (
        "eventlet",
        eventlet_websocket.RFC6455WebSocket.Message,
        "__init__",
        "(self, opcode, max_frame_length, decoder=None, decompressor=None)",
    ),
    ("eventlet", eventlet_websocket.RFC6455WebSocket, "wait", "(self)"),
    ("eventlet", eventlet_websocket.FailedConnectionError, "__init__", "(self, status, message)"),
]


def where(distribution: str, owner: type, name: str) -> str:
    """``python-socketio 5.18.1: socketio.server.Server._handle_event``."""
    version = importlib.metadata.version(distribution)
    return f"{distribution} {version}: {owner.__module__}.{owner.__qualname__}.{name}"


@pytest.mark.parametrize(
    ("distribution", "owner", "name", "expected"),
    SIGNATURES,
    ids=[f"{owner.__qualname__}.{name}" for _, owner, name, _ in SIGNATURES],
)
def test_each_private_part_we_rely_on_has_the_signature_we_tested(distribution, owner, name, expected):
    part = where(distribution, owner, name)
    assert hasattr(owner, name), f"{part} is gone; follower/server.py or follower/websocket_mask.py relies on it"
    found = str(inspect.signature(getattr(owner, name)))
    assert found == expected, (
        f"{part} changed its signature: expected {expected}, found {found}. follower/server.py or "
        "follower/websocket_mask.py overrides or calls it: see docs/transport.md before raising the bound"
    )


def test_the_engine_server_keeps_its_sessions_and_disconnect_reasons_where_the_server_reads_them():
    server = engineio.Server(async_mode="eventlet")
    part = where("python-engineio", engineio.Server, "sockets")
    assert isinstance(getattr(server, "sockets", None), dict), f"{part} is no longer a dict of sessions"
    part = where("python-engineio", engineio.Server, "reason.SERVER_DISCONNECT")
    assert hasattr(getattr(server, "reason", None), "SERVER_DISCONNECT"), f"{part} is gone"


def test_eventlet_websocket_keeps_its_message_class_where_the_cap_replaces_it():
    part = where("eventlet", eventlet_websocket.RFC6455WebSocket, "Message")
    assert inspect.isclass(getattr(eventlet_websocket.RFC6455WebSocket, "Message", None)), f"{part} is gone"
    message = eventlet_websocket.RFC6455WebSocket.Message(1, max_frame_length=10)
    assert message.max_frame_length == 10, f"{part}.max_frame_length is no longer set by its constructor"


def test_a_new_engine_session_is_a_plain_socket_and_becomes_the_simulators():
    """The server swaps the class of each engine.io `Socket` it finds of exactly that class: a handshake must
    create one (engine.io's ``Server._handle_connect`` does, as ``socket.Socket(self, sid)``)."""
    server = SimulatorServer(async_mode="eventlet", report_packet=lambda *_: None)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/socket.io/",
        "QUERY_STRING": "EIO=4&transport=polling",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(b""),
    }
    statuses = []
    body = server.handle_request(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["200 OK"] and body[0].startswith(b"0{"), (statuses, body)
    (engine_socket,) = server.eio.sockets.values()
    part = where("python-engineio", eio_socket.Socket, "__class__")
    assert type(engine_socket) is _SimulatorSocket, f"{part}: a new session is a {type(engine_socket)}, not swapped"
