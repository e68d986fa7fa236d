"""End to end: the real server in a subprocess, driven like the simulator drives it.

The model is a real Keras network saved with `models.save` (a 1x1 softmax conv that calls red pixels the
target), so the server's whole path runs: loading, the compiled segmenter, the worker thread, the sockets. The protocol
flight jumps between scenes far apart in the world, one frame each, so it runs with ``--tracker none`` (every
detection answered); the default tracker has a flight of its own, a target plainly there.
"""

from __future__ import annotations

import queue
import re
import socket
import time

import numpy as np
import pytest
from follower_helpers import (
    ServerProcess,
    save_red_model,
    scene_targets,
    sensor_frame,
)

from follower.segmenter import DEFAULT_THREADS, choose_runtime
from sim_bridge import geometry
from sim_bridge.client import SimulatorClient

TOLERANCE_M = 0.2
LOST_AFTER = 6
COAST_FRAMES = 3


@pytest.fixture(scope="module")
def red_model(tmp_path_factory):
    return save_red_model(tmp_path_factory.mktemp("model") / "red")


@pytest.fixture(scope="module")
def server(red_model):
    process = ServerProcess(red_model, "--warn-interval", "0.5", "--tracker", "none")
    try:
        process.wait_for_line("waiting for the simulator")
        yield process
    finally:
        process.stop()


def empty_frame() -> dict[str, str]:
    return sensor_frame(geometry.Pose(0.0, 0.0, 10.0, 0.0, 45.0, 0.0), None)


def next_event(events: queue.Queue, timeout: float = 10.0) -> tuple[str, dict]:
    return events.get(timeout=timeout)


def check_detection(events: queue.Queue, truth: np.ndarray, marker_ids: set) -> None:
    """The next two events: ``object_detected`` near ``truth`` and a fresh box marker at the same place.

    python-socketio's client runs each event handler in its own thread, so the two may come in any order.
    """
    received = dict(next_event(events) for _ in range(2))
    assert set(received) == {"object_detected", "create_box_marker"}
    coords, marker = received["object_detected"]["coords"], received["create_box_marker"]
    assert np.linalg.norm(np.array(coords) - truth) < TOLERANCE_M, (coords, truth)
    assert marker["pose"] == [*coords, 0.0, 0.0, 0.0]
    assert marker["dimensions"] == [0.7, 0.7, 2.0]
    assert marker["color"] == [0.0, 0.0, 1.0, 0.1]
    assert marker["duration"] == pytest.approx(0.4)
    assert marker["id"] not in marker_ids
    marker_ids.add(marker["id"])


def run_flight(server: ServerProcess, emit, events: queue.Queue) -> None:
    """Target frames in several poses and cultures, a malformed frame, then frames without the target."""
    start_log = len(server.lines)
    processed = server.wait_processed(0)["frames_processed"] + server.health()["frames_rejected"]
    marker_ids: set = set()
    for pose, truth, decimal, group in scene_targets():
        emit("sensor_frame", sensor_frame(pose, truth, decimal, group))
        check_detection(events, truth, marker_ids)
        processed += 1
    server.wait_processed(processed)

    emit("sensor_frame", {**empty_frame(), "gimbal_pose": "1,2,3"})
    processed += 1
    assert server.wait_processed(processed)["frames_rejected"] >= 1
    server.wait_for_line("Rejected sensor_frame", start=start_log, timeout=5)

    for _ in range(LOST_AFTER):
        emit("sensor_frame", empty_frame())
        processed += 1
        server.wait_processed(processed)
    assert events.empty(), "object_lost came too early"
    emit("sensor_frame", empty_frame())
    assert next_event(events) == ("object_lost", {"data": ""})

    server.wait_for_line("Target lost!", start=start_log, timeout=5)  # the log line may trail the event
    found = [line for line in server.lines[start_log:] if "Target found!" in line]
    lost = [line for line in server.lines[start_log:] if "Target lost!" in line]
    assert len(found) == 1 and len(lost) == 1, server.lines[start_log:]
    rejected = server.wait_for_line("Rejected sensor_frame", start=start_log)
    assert "gimbal_pose" in rejected and "six numbers" in rejected


def test_simulator_client_without_connect_packet(server):
    client = SimulatorClient(server.url)
    try:
        assert 0 < client.round_trip(timeout=5) < 5  # a PING answered by a PONG, before any event
        run_flight(server, client.emit, client.events)
        server.wait_for_line(f"Engine session {client.sid} sent an event without CONNECT")
        deadline = time.monotonic() + 5
        while (client.server_pings == 0 or client.pongs == 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.pongs >= 1, "the server did not answer the client's PING"
        assert client.server_pings >= 1, "the server sent no PING within 5 s"
        assert any(message.startswith("40") for message in client.other)  # the implicit CONNECT's reply
        assert server.health()["frames_dropped"] == 0
    finally:
        client.close()


def test_python_socketio_client(server):
    import socketio

    events: queue.Queue = queue.Queue()
    client = socketio.Client()
    for name in ("object_detected", "create_box_marker", "object_lost", "delete_marker"):
        client.on(name, lambda data, name=name: events.put((name, data)))
    client.connect(server.url, wait_timeout=10)
    try:
        run_flight(server, client.emit, events)
    finally:
        client.disconnect()
    health = server.health()
    assert health["status"] == "ok" and health["input_size"] == 128 and health["device"] == "CPU"
    runtime = choose_runtime("auto")  # openvino where it is installed on x86-64, with one thread per core
    assert (health["backend"], health["runtime"]) == ("tensorflow", runtime)
    assert health["inference_threads"] == DEFAULT_THREADS[runtime]
    assert health["mode"] == "PATROL" and isinstance(health["last_frame_age_s"], float)


def test_the_default_tracker_confirms_coasts_and_loses_a_target_plainly_there(red_model):
    server = ServerProcess(red_model)
    try:
        server.wait_for_line("waiting for the simulator")
        pose, truth, _, _ = scene_targets()[0]
        with SimulatorClient(server.url) as client:
            client.emit("sensor_frame", sensor_frame(pose, truth))  # a candidate: nothing sent yet
            server.wait_processed(1)
            assert client.events.empty()
            marker_ids: set = set()
            for processed in (2, 3):
                client.emit("sensor_frame", sensor_frame(pose, truth))
                check_detection(client.events, truth, marker_ids)
                server.wait_processed(processed)
            for _ in range(COAST_FRAMES):  # the target goes unseen: its predicted position, as a standing one
                client.emit("sensor_frame", empty_frame())
                check_detection(client.events, truth, marker_ids)
            processed += COAST_FRAMES
            for _ in range(LOST_AFTER - COAST_FRAMES):
                client.emit("sensor_frame", empty_frame())
                processed += 1
                server.wait_processed(processed)
            assert client.events.empty(), "object_lost came too early"
            client.emit("sensor_frame", empty_frame())
            assert next_event(client.events) == ("object_lost", {"data": ""})
        server.wait_for_line("Target lost!")
        (found,) = [line for line in server.lines if "Target found!" in line]
        logged = re.search(r"Target found! at \((\S+), (\S+), (\S+)\) m", found).groups()
        assert np.linalg.norm(np.array(logged, float) - truth) < TOLERANCE_M, found  # the confirmed position
        assert sum("Target lost!" in line for line in server.lines) == 1
        assert server.health()["tracker"] == "kalman"
    finally:
        server.stop()


def test_sigterm_disconnects_clients_and_exits_cleanly(red_model):
    server = ServerProcess(red_model, "--stats-interval", "0.5")
    try:
        server.wait_for_line("waiting for the simulator")
        client = SimulatorClient(server.url)
        client.emit("sensor_frame", empty_frame())
        server.wait_processed(1)
        server.wait_for_line("stats: ")
        assert server.stop() == 0
        client.close()
        server.wait_for_line("Shutting down on SIGTERM: disconnecting clients")
        server.wait_for_line("Stopped after 1 frames")
    finally:
        server.stop()


def test_missing_weights_exit_before_listening(tmp_path):
    server = ServerProcess(tmp_path / "nothing_here")
    assert server.process.wait(60) == 1
    server.wait_for_line("No model at")
    assert not any("waiting for the simulator" in line for line in server.lines)


def test_busy_port_exits_before_loading(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = ServerProcess(tmp_path / "nothing_here", port=taken.getsockname()[1])
        assert server.process.wait(30) == 1
    server.wait_for_line("Cannot listen on 127.0.0.1")
    assert not any("No model at" in line for line in server.lines)


def test_start_up_prints_one_line_as_the_readme_shows_it(server):
    line = server.wait_for_line("waiting for the simulator")
    runtime = choose_runtime("auto")
    engine, threads = {
        "openvino": (r"openvino \(converted from tensorflow\)", "one per core"),
        "keras": ("tensorflow", 1),
    }[runtime]
    pattern = (
        rf"INFO follower: Serving \S+ \(input 128x128, {engine} on CPU, inference threads: {threads}\) "
        r"on http://127\.0\.0\.1:\d+ \(ping every 2 s\); waiting for the simulator$"
    )
    assert re.search(pattern, line), line
    before = server.lines[: server.lines.index(line)]
    assert not [text for text in before if "oneDNN" in text or "absl" in text or "cpu_feature_guard" in text], before


def test_quiet_tensorflow_hides_standard_error_unless_the_block_raises(capfd):
    import os

    from follower.serve import quiet_tensorflow

    with quiet_tensorflow(show=False):
        os.write(2, b"chatter\n")
    with pytest.raises(ImportError), quiet_tensorflow(show=False):
        os.write(2, b"why it failed\n")
        raise ImportError("no tensorflow")
    with quiet_tensorflow(show=True):
        os.write(2, b"shown for DEBUG\n")
    err = capfd.readouterr().err
    assert "chatter" not in err and "why it failed" in err and "shown for DEBUG" in err
