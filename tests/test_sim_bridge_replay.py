"""sim_bridge.replay against the real server: flights with malformed frames, lockstep, draining.

The server's network is the synthetic flight's truth masks (`truth_server`) or a slow red-pixel detector
(`slow_server`), so these tests check the replay and the sockets, not a model.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from follower_helpers import ServerProcess, sensor_frame
from truth_server import TruthSegmenter

from follower.pipeline import Settings
from follower.replay import replay as replay_in_process
from sim_bridge import geometry
from sim_bridge.flight import FlightWriter, RecordedFrame, read_flight
from sim_bridge.replay import main, play, replay

FRAMES = 40
MALFORMED = {5: "not a frame", 12: None, 20: "pose"}  # index in the flight → what the frame is instead


@pytest.fixture(scope="module")
def malformed_flight_path(synthetic_flight, tmp_path_factory) -> Path:
    """The synthetic flight's first frames, three of them malformed (a string, null, a two-number pose)."""
    path = tmp_path_factory.mktemp("malformed") / "malformed.flight.jsonl.gz"
    with FlightWriter(path, "test") as writer:
        for frame in synthetic_flight.frames[:FRAMES]:
            data = MALFORMED.get(frame.index, frame.data)
            if data == "pose":
                data = {**frame.data, "pose": "1.0,2.0"}
            writer.write_frame(frame.t, data, frame.truth)
    return path


@pytest.fixture(scope="module")
def truth_server(synthetic_flight_path, tmp_path_factory):
    record = tmp_path_factory.mktemp("record")
    process = ServerProcess(
        synthetic_flight_path, "--record", str(record), "--warn-interval", "60", module="truth_server"
    )
    try:
        process.wait_for_line("waiting for the simulator")
        process.record = record
        yield process
    finally:
        process.stop()


def answers(responses) -> list[tuple]:
    """(frame, event, payload) of each response; a marker's id, counted over the server's life, left out."""
    return [
        (response.frame, response.name, {key: value for key, value in response.data.items() if key != "id"})
        for response in responses
    ]


def test_a_flight_with_malformed_frames_is_read_whole(malformed_flight_path):
    flight = read_flight(malformed_flight_path)
    assert len(flight.frames) == FRAMES
    assert flight.frames[5].data == "not a frame" and flight.frames[12].data is None
    assert flight.frames[20].data["pose"] == "1.0,2.0"


def test_lockstep_replays_give_the_same_events_frame_by_frame_as_in_process(
    truth_server, malformed_flight_path, synthetic_flight
):
    flight = read_flight(malformed_flight_path)
    first = play(flight, truth_server.url, lockstep=True, settle_s=0.2)
    second = play(flight, truth_server.url, lockstep=True, settle_s=0.2)
    assert first[0] == second[0] == FRAMES
    assert answers(first[1]) == answers(second[1])
    assert any(name == "object_detected" for _, name, _ in answers(first[1]))

    summary = replay(flight, truth_server.url, lockstep=True, settle_s=0.2)
    expected = replay_in_process(flight, TruthSegmenter(synthetic_flight), Settings())
    assert summary["events"] == expected["events"] and summary["transitions"] == expected["transitions"]
    assert summary["frames_rejected"] == expected["frames_rejected"] == len(MALFORMED)
    assert summary["frames_dropped"] == 0 and summary["frames_processed"] == FRAMES - len(MALFORMED)


def test_a_recorded_session_with_malformed_frames_replays_to_the_same_counts(truth_server, malformed_flight_path):
    before = set(truth_server.record.glob("*.flight.jsonl.gz"))
    original = replay(read_flight(malformed_flight_path), truth_server.url, lockstep=True, settle_s=0.2)
    truth_server.wait_for_line("disconnected")
    (recorded_path,) = set(truth_server.record.glob("*.flight.jsonl.gz")) - before
    time.sleep(0.2)  # the flight is closed on disconnect
    recorded = read_flight(recorded_path)
    assert [frame.data for frame in recorded.frames] == [
        frame.data for frame in read_flight(malformed_flight_path).frames
    ]
    again = replay(recorded, truth_server.url, lockstep=True, settle_s=0.2)
    for key in ("events", "transitions", "frames_rejected", "frames_processed"):
        assert again[key] == original[key], key


def test_as_fast_as_possible_waits_for_the_answers(tmp_path, capsys):
    pose, target = geometry.Pose(0.0, 0.0, 10.0, 0.0, 45.0, 0.0), np.array([9.0, 0.5, 0.9])
    frames = [RecordedFrame(i, 1000.0 + i, sensor_frame(pose, target)) for i in range(20)]
    path = tmp_path / "fast.flight.jsonl"
    with FlightWriter(path, "test") as writer:
        for frame in frames:
            writer.write_frame(frame.t, frame.data)
    server = ServerProcess(Path("0.2"), "--tracker", "none", module="slow_server")
    try:
        server.wait_for_line("waiting for the simulator")
        assert main([str(path), "--url", server.url, "--as-fast-as-possible"]) == 0
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert "frames sent: 20" in out and "0 frames answered" not in out, out
    assert "frames at the server: " in out and " 0 rejected, 0 failed" in out, out
    summary_line = next(line for line in out.splitlines() if line.startswith("frames at the server"))
    processed, dropped = (int(part.split()[0]) for part in summary_line.split(": ")[1].split(", ")[:2])
    assert processed >= 2 and processed + dropped == 20
