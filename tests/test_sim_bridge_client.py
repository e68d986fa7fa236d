"""The simulator's client against a bare WebSocket server that sends exactly the frames a test names."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time

from sim_bridge.client import SimulatorClient

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
TEXT, BINARY = 0x1, 0x2


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked server frame of under 126 bytes."""
    return bytes([0x80 | opcode, len(payload)]) + payload


def serve_once(listener: socket.socket, frames: list[bytes], done: threading.Event) -> None:
    """Accept one connection, complete the handshake, send ``frames``, and hold the connection until ``done``."""
    connection, _ = listener.accept()
    with connection:
        request = b""
        while b"\r\n\r\n" not in request:
            request += connection.recv(4096)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID).digest())
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + b"".join(frames)
        )
        done.wait(10)


def test_a_binary_frame_is_kept_with_the_other_packets_and_reading_goes_on():
    frames = [frame(TEXT, b'0{"sid":"s1"}'), frame(BINARY, b"\x00\xff"), frame(TEXT, b"3")]
    done = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=serve_once, args=(listener, frames, done), daemon=True)
        server.start()
        client = SimulatorClient(f"http://127.0.0.1:{listener.getsockname()[1]}", ping_interval=None)
        try:
            deadline = time.monotonic() + 5.0
            while client.pongs == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert client.sid == "s1"
            assert client.other == [b"\x00\xff"]
            assert client.pongs == 1  # the PONG after the binary frame was read
        finally:
            done.set()
            client.close()
            server.join(5)
