"""Hostile input over the simulator's own wire: after each attack a real frame is answered within 1 s, the
server's peak memory grows by less than 100 MB over all of them, and SIGTERM still ends it within 3 s.

The real server in a subprocess, its network a test double (`slow_server` with no delay), so that every case
runs the whole socket and decoding path; frames are answered frame by frame (``--tracker none``). Each case
speaks over a raw WebSocket, as the simulator does, and may leave its connection open or closed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import struct
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
import websocket
from follower_helpers import ServerProcess, next_event_named, sensor_frame

from sim_bridge import geometry, protocol
from sim_bridge.client import SimulatorClient, websocket_url

POSE = geometry.Pose(0.0, 0.0, 10.0, 0.0, 45.0, 0.0)
TARGET = np.array([9.0, 0.5, 0.9])
ANSWER_S = 1.0
SHUTDOWN_S = 3.0
PEAK_GROWTH_MB = 100
MESSAGE_LIMIT = 16 * 1024 * 1024

# The issue's packets: each once, on one connection, in this order.
ISSUE_PACKETS = [
    '42["sensor_frame",{',
    "42",
    "4",
    "9",
    "42[]",
    "42[1,2]",
    "\x00\xff",
    '451-["sensor_frame",{"_placeholder":true,"num":0}]',
    os.urandom(1000),
]


def png_declaring(width: int, height: int, rows: int | None = None) -> bytes:
    """An RGBA PNG that declares ``width`` x ``height`` pixels, its first ``rows`` rows (all) of zeros: only
    the first bytes are needed to refuse it; a complete one makes the check below slow to build."""
    rows = height if rows is None else rows
    compressor = zlib.compressobj(9)
    block = b"\0" * ((1 + 4 * width) * min(rows, 100))  # filter byte and RGBA per row, 100 rows at a time
    body = b"".join(compressor.compress(block) for _ in range(rows // 100))
    body += compressor.compress(b"\0" * ((1 + 4 * width) * (rows % 100))) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return protocol.PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) declares ``width`` x ``height`` pixels."""
    data = bytearray(protocol.encode_jpeg(np.zeros((16, 16, 3), np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def frame_with(**images: bytes) -> str:
    """A ``sensor_frame`` packet of the real scene with some images replaced."""
    message = sensor_frame(POSE, TARGET)
    message.update({field: base64.b64encode(data).decode("ascii") for field, data in images.items()})
    return "42" + json.dumps(["sensor_frame", message])


class RawSocket:
    """A raw WebSocket to the server, past its Engine.IO OPEN packet."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(websocket_url(url), timeout=10, suppress_origin=True)
        assert self.ws.recv().startswith("0")

    def send(self, packet: str | bytes) -> None:
        if isinstance(packet, bytes):
            self.ws.send_binary(packet)
        else:
            self.ws.send(packet)

    def send_fragments(self, fragments: list[bytes], opcode: int = websocket.ABNF.OPCODE_TEXT) -> None:
        """One message in several WebSocket frames."""
        for i, fragment in enumerate(fragments):
            frame = websocket.ABNF.create_frame(
                fragment, opcode if i == 0 else websocket.ABNF.OPCODE_CONT, fin=int(i == len(fragments) - 1)
            )
            self.ws.send_frame(frame)

    def close(self) -> None:
        self.ws.close(timeout=1)


def issue_packets(raw: RawSocket) -> None:
    for packet in ISSUE_PACKETS:
        raw.send(packet)


CASES = {
    "the issue's malformed packets": issue_packets,
    "a 20000x20000 depth PNG": lambda raw: raw.send(frame_with(depth_image=png_declaring(20000, 20000, rows=100))),
    "a 16000x16000 JPEG": lambda raw: raw.send(frame_with(rgb_image=jpeg_declaring(16000, 16000))),
    "a 9000x9000 JPEG": lambda raw: raw.send(frame_with(rgb_image=jpeg_declaring(9000, 9000))),
    "a 1025x1 PNG": lambda raw: raw.send(frame_with(depth_image=png_declaring(1025, 1))),
    "a JPEG without a frame header": lambda raw: raw.send(frame_with(rgb_image=b"\xff\xd8\xff\xe0\x00\x02" * 50_000)),
    "JSON nested 100,000 deep": lambda raw: raw.send('42["sensor_frame",' + "[" * 100_000),
    "a 15 MB string as the frame": lambda raw: raw.send('42["sensor_frame","' + "A" * 15_000_000 + '"]'),
    "a 15 MB pose": lambda raw: raw.send(frame_with().replace('"pose": "', '"pose": "' + "9" * 15_000_000, 1)),
    "a message over the 16 MiB limit": lambda raw: raw.send("4" + "2" * (MESSAGE_LIMIT + 10)),
    "a message of 24 fragments of 1 MiB": lambda raw: raw.send_fragments([b"42" + b"0" * (1 << 20)] * 24),
    "invalid UTF-8 in a text message": lambda raw: raw.send_fragments([b"42\xff\xfe"]),
    "a binary event whose attachment never comes": lambda raw: raw.send(
        '451-["sensor_frame",{"_placeholder":true,"num":0}]'
    ),
    "CONNECT to an unknown namespace, an ACK, DISCONNECT": lambda raw: [
        raw.send(p) for p in ("40/nope,", "43[1]", "41")
    ],
    "unknown events and frames of the wrong type": lambda raw: [
        raw.send(packet) for packet in ('42["fly_away",{}]', '42["sensor_frame",[1]]', '42["sensor_frame",null]')
    ],
    "a client that closes mid-message": lambda raw: raw.ws.sock.sendall(b"\x81\xff" + struct.pack(">Q", 1 << 20)),
}


@pytest.fixture(scope="module")
def server():
    process = ServerProcess(Path("0"), "--tracker", "none", "--warn-interval", "60", module="slow_server")
    try:
        process.wait_for_line("waiting for the simulator")
        yield process
    finally:
        process.stop()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def answer_time(server: ServerProcess) -> float:
    """Seconds from sending a real frame, on a new connection, to its ``object_detected``."""
    with SimulatorClient(server.url) as client:
        start = time.monotonic()
        client.emit("sensor_frame", sensor_frame(POSE, TARGET))
        next_event_named(client, "object_detected")
        return time.monotonic() - start


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc (Linux)")
def test_every_attack_then_a_real_frame_then_sigterm(server):
    answer_time(server)  # warm
    peak_before = peak_rss_mb(server.process.pid)
    slow, peaks = {}, {}
    for name, attack in CASES.items():
        raw = RawSocket(server.url)
        with contextlib.suppress(OSError, websocket.WebSocketException):  # some cases make the server close it
            attack(raw)
        seconds = answer_time(server)
        if seconds > ANSWER_S:
            slow[name] = round(seconds, 2)
        if name != "a client that closes mid-message":
            raw.close()
        peaks[name] = round(peak_rss_mb(server.process.pid) - peak_before)
    assert not slow, f"real frames answered late after: {slow}"
    assert max(peaks.values()) < PEAK_GROWTH_MB, f"peak memory growth (MB) after each case: {peaks}"
    health = server.health()
    assert health["frames_rejected"] >= 5 and health["packets_dropped"] >= 5, health
    log = "\n".join(server.lines)
    assert "Traceback" not in log and "message handler error" not in log, log
    assert "rgb_image: declares 16000x16000 pixels, more than 1024 a side" in log
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'reason="image_too_large"} 4.0' in metrics, metrics
    assert f"follower_packets_dropped_total {float(health['packets_dropped'])}" in metrics, metrics

    start = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(SHUTDOWN_S + 2) == 0
    assert time.monotonic() - start < SHUTDOWN_S
    server.wait_for_line("Stopped after")


def test_sigterm_right_after_the_issue_packets_on_an_open_connection():
    process = ServerProcess(Path("0"), module="slow_server")
    try:
        process.wait_for_line("waiting for the simulator")
        raw = RawSocket(process.url)
        issue_packets(raw)
        time.sleep(0.5)
        start = time.monotonic()
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(SHUTDOWN_S + 2) == 0
        assert time.monotonic() - start < SHUTDOWN_S
        raw.close()
        dropped = [line for line in process.lines if "Dropped a packet" in line]
        assert dropped and all("Traceback" not in line for line in process.lines)
    finally:
        process.stop()
