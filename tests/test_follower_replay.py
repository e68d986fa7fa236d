"""Replays of a synthetic flight: in process, and through the real server with recording on.

The server's network is replaced by the flight's truth masks (`truth_server`), so these tests check the
geometry, the found/lost logic, the sockets and the recording, not a model.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from flight_helpers import expected_transitions
from follower_helpers import ROOT, ServerProcess
from truth_server import TruthSegmenter

from benchmarks.servers import free_port
from follower.pipeline import Settings
from follower.replay import replay
from follower.tracking import FrameTracker
from sim_bridge.flight import read_flight
from sim_bridge.summary import Response, format_summary, summarize

MAX_LOC_ERROR_M = 0.1
REPLAY_SPEED = "3"


@pytest.fixture(scope="module")
def in_process(synthetic_flight):
    flight = synthetic_flight
    return flight, replay(flight, TruthSegmenter(flight), Settings())


def test_in_process_replay_finds_and_loses_the_target_at_the_right_frames(in_process):
    flight, summary = in_process
    assert summary["transitions"] == expected_transitions(flight, confirm=(2, 3))  # the default tracker
    assert summary["decisions"]["candidate"] == 1 and summary["decisions"]["confirmed"] == 1
    assert summary["decisions"]["coasting"] == 3 and summary["decisions"]["lost"] == 1
    assert summary["loc_err_m"]["median"] < MAX_LOC_ERROR_M
    assert summary["frames_sent"] == len(flight.frames) and summary["frames_rejected"] == 0
    assert summary["events"]["object_detected"] == summary["events"]["create_box_marker"] > 10
    assert summary["frames_per_s"] > 0
    assert "tracker decisions (frames): candidate 1, coasting 3, confirmed 1" in format_summary(summary)
    again = replay(flight, TruthSegmenter(flight), Settings())
    assert (again["events"], again["transitions"], again["loc_err_m"]) == (
        summary["events"],
        summary["transitions"],
        summary["loc_err_m"],
    )


def test_the_frame_by_frame_tracker_finds_and_loses_the_target_as_the_original_follower(synthetic_flight):
    summary = replay(synthetic_flight, TruthSegmenter(synthetic_flight), Settings(), FrameTracker())
    assert summary["transitions"] == expected_transitions(synthetic_flight)
    assert summary["loc_err_m"]["median"] < MAX_LOC_ERROR_M


def test_replay_through_the_server_matches_and_is_recorded(tmp_path, in_process, synthetic_flight_path):
    flight, expected = in_process
    record = tmp_path / "flights"
    server = ServerProcess(synthetic_flight_path, "--record", str(record), module="truth_server")
    try:
        server.wait_for_line("waiting for the simulator")
        out = tmp_path / "summary.json"
        command = ["-m", "sim_bridge.replay", str(synthetic_flight_path), "--url", server.url]
        result = run(*command, "--speed", REPLAY_SPEED, "--json", str(out))
        assert result.returncode == 0, result.stderr
        server.wait_for_line("disconnected")
    finally:
        assert server.stop() == 0
    summary = json.loads(out.read_text())
    assert "frames sent: 60" in result.stdout and "localization error: median" in result.stdout
    assert summary["frames_sent"] == len(flight.frames)
    # The replay gives each answer to the newest frame sent when it arrived: a slow machine can move a transition
    # to a later frame, never to an earlier one. The recording below names the frames exactly.
    transitions = summary["transitions"]
    assert [t["event"] for t in transitions] == [t["event"] for t in expected["transitions"]]
    assert all(t["frame"] >= e["frame"] for t, e in zip(transitions, expected["transitions"]))
    assert summary["events"] == expected["events"]
    assert summary["loc_err_m"]["median"] < MAX_LOC_ERROR_M
    assert summary["latency_ms"]["p50"] > 0

    (recorded_path,) = record.glob("*.flight.jsonl.gz")
    recorded = read_flight(recorded_path)
    assert [frame.data for frame in recorded.frames] == [frame.data for frame in flight.frames]
    counts = {name: sum(event.name == name for event in recorded.events) for name in summary["events"]}
    assert counts == summary["events"]
    assert all(event.frame is not None for event in recorded.events)
    answers = [Response(event.frame, event.name, event.data, 0.0) for event in recorded.events]
    assert summarize(flight.frames, len(flight.frames), answers)["transitions"] == expected["transitions"]
    assert [d.frame for d in recorded.decisions] == list(range(len(flight.frames)))
    statuses = [d.data["status"] for d in recorded.decisions]
    assert {name: statuses.count(name) for name in expected["decisions"]} == expected["decisions"]
    assert recorded.header["source"] == "follower.serve truth masks"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_replay_exits_with_the_reason_when_the_server_does_not_answer(synthetic_flight_path):
    result = run("-m", "sim_bridge.replay", str(synthetic_flight_path), "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1 and "error: the server does not answer" in result.stderr


@pytest.mark.parametrize("module", ["sim_bridge.replay", "follower.replay"])
def test_replays_exit_with_the_reason_for_an_unreadable_file(tmp_path, module):
    path = tmp_path / "bad.flight.jsonl"
    path.write_text('{"type": "header"}\n')
    result = run("-m", module, str(path), *(["nothing"] if module == "follower.replay" else []))
    assert result.returncode == 1 and f"error: {path}:1: expected a quadsim-flight header" in result.stderr
    result = run("-m", module, str(tmp_path / "missing.flight.jsonl"), *(["x"] if module == "follower.replay" else []))
    assert result.returncode == 1 and "cannot read" in result.stderr
