"""Overload: frames that arrive faster than the network runs are dropped and counted, never queued.

The real server in a subprocess, its network a test double that sleeps (`slow_server`), driven like the
simulator drives it, with frames sent back to back. Each frame shows the target somewhere else, so the
position in an ``object_detected`` tells which frame was processed: the server decides frame by frame
(``--tracker none``), so that every processed frame is answered with its own detection.
"""

from __future__ import annotations

import queue
import time

import numpy as np
from follower_helpers import ServerProcess, sensor_frame

from sim_bridge import geometry
from sim_bridge.client import SimulatorClient

DELAY_S = 0.3
FRAMES = 20
POSE = geometry.Pose(0.0, 0.0, 10.0, 0.0, 45.0, 0.0)
TARGETS = [np.array([9.0, -3.0 + 0.3 * i, 0.9]) for i in range(FRAMES)]  # 0.3 m apart, about 6 pixels


def wait_until_accounted(server: ServerProcess, sent: int, timeout: float = 10.0) -> dict:
    """``/healthz`` once every frame sent was received and then processed, dropped, rejected or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = server.health()
        settled = sum(health[f"frames_{what}"] for what in ("processed", "dropped", "rejected", "failed"))
        if health["frames_received"] == sent and settled == sent:
            return health
        time.sleep(0.05)
    raise AssertionError(f"frames not accounted for after {timeout} s: {server.health()}")


def detected_frames(events: queue.Queue, count: int) -> list[int]:
    """The frames whose target the next ``count`` ``object_detected`` events locate, in order."""
    frames = []
    while len(frames) < count:
        name, data = events.get(timeout=5)
        if name == "object_detected":
            distances = [np.linalg.norm(np.asarray(data["coords"]) - target) for target in TARGETS]
            frames.append(int(np.argmin(distances)))
    return frames


def test_frames_faster_than_the_network_are_dropped_and_counted_not_queued():
    frames = [sensor_frame(POSE, target) for target in TARGETS]
    server = ServerProcess(str(DELAY_S), "--tracker", "none", module="slow_server")
    try:
        server.wait_for_line("waiting for the simulator")
        with SimulatorClient(server.url) as client:
            for frame in frames:
                client.emit("sensor_frame", frame)
            health = wait_until_accounted(server, FRAMES)
            processed = health["frames_processed"]
            assert health["frames_rejected"] == 0 and health["frames_failed"] == 0
            assert health["frames_dropped"] == FRAMES - processed
            assert processed <= FRAMES // 2, health  # far fewer than were sent: the stale ones were dropped
            detected = detected_frames(client.events, processed)
        assert detected[0] == 0  # the first frame found the follower idle
        assert detected[-1] == FRAMES - 1  # the newest frame always wins its slot
        assert detected == sorted(set(detected))  # in order, each at most once
    finally:
        server.stop()
