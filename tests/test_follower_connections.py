"""One follower per connection, through the real server: several simulators at once, each told only about its
own target; one beyond --max-connections refused; a second client changes nothing of what the first is told.

The server's network is the synthetic flight's truth masks (`truth_server`). Every simulator flies the same
flight moved to a place of its own (its poses and truth shifted), so the images, and the masks, are the same
and only the positions tell the targets apart: a follower shared between connections would mix them up.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from follower_helpers import ServerProcess

from sim_bridge.client import SimulatorClient
from sim_bridge.flight import Flight, read_flight
from sim_bridge.protocol import format_pose, parse_pose
from sim_bridge.replay import play
from sim_bridge.summary import DETECTED, summarize

MIN_PIXELS = 5  # the server's default --min-pixels: a target seen in fewer pixels is not there for it
PLACES = [(0.0, 0.0), (40.0, 0.0), (0.0, 40.0), (40.0, 40.0)]  # metres: each simulator's flight moved there


def moved(flight: Flight, dx: float, dy: float) -> Flight:
    """``flight`` with the drone's poses and the target's true positions shifted by (dx, dy) metres."""
    shift = np.array([dx, dy, 0.0])

    def shifted_pose(text: str) -> str:
        pose = parse_pose(text)
        return format_pose((pose.x + dx, pose.y + dy, pose.z, pose.roll, pose.pitch, pose.yaw))

    frames = []
    for frame in flight.frames:
        data = {**frame.data, "pose": shifted_pose(frame.data["pose"]),
                "gimbal_pose": shifted_pose(frame.data["gimbal_pose"])}  # fmt: skip
        position = None if frame.truth.position is None else frame.truth.position + shift
        frames.append(dataclasses.replace(frame, data=data, truth=dataclasses.replace(frame.truth, position=position)))
    return dataclasses.replace(flight, frames=frames)


@pytest.fixture
def truth_server(synthetic_flight_path, tmp_path):
    process = ServerProcess(
        synthetic_flight_path, "--max-connections", "4", "--record", str(tmp_path / "record"), module="truth_server"
    )
    try:
        process.wait_for_line("waiting for the simulator")
        process.record = tmp_path / "record"
        yield process
    finally:
        process.stop()


def play_at_once(url: str, flights: list[Flight], **options) -> list[tuple[int, list]]:
    """`play` each flight from a client of its own, all at the same time; what each got back (`Played`)."""
    results: list = [None] * len(flights)

    def fly(i: int) -> None:
        results[i] = play(flights[i], url, **options)

    threads = [threading.Thread(target=fly, args=(i,)) for i in range(len(flights))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_four_simulators_each_follow_their_own_target_and_a_fifth_is_refused(truth_server, synthetic_flight):
    flights = [moved(synthetic_flight, dx, dy) for dx, dy in PLACES]
    results = play_at_once(truth_server.url, flights, speed=1.0, settle_s=0.3)  # 5 frames/s each, as the simulator
    for flight, (sent, responses, counts) in zip(flights, results):
        summary = summarize(flight.frames, sent, responses)
        found = summary["transitions"][0]["frame"]
        visible_after = [f.index for f in flight.frames if f.index >= found and (f.truth.mask == 2).sum() > MIN_PIXELS]
        # counted, not matched to frames: under load an answer can arrive after the next frame went out
        answered = sum(r.name == DETECTED and r.frame >= found for r in responses)
        assert sent == len(flight.frames) and answered >= 0.9 * len(visible_after), (answered, len(visible_after))
        assert summary["loc_err_m"]["p90"] < 1.0, summary  # its own target: the others are 40 m away
        assert sum(counts.values()) == sent, counts  # its own connection's counters, not the four clients'

    recorded = [read_flight(path) for path in sorted(truth_server.record.glob("*.flight.jsonl.gz"))]
    assert len(recorded) == 4
    for flight in recorded:  # each file holds its own connection's frames, decisions and events only
        drone = {frame.index: np.array([parse_pose(frame.data["pose"]).x, parse_pose(frame.data["pose"]).y])
                 for frame in flight.frames}  # fmt: skip
        assert len(flight.frames) == len(synthetic_flight.frames)
        assert 0.9 * len(flight.frames) <= len(flight.decisions) <= len(flight.frames)
        detected = [event for event in flight.events if event.name == DETECTED]
        assert detected and all(np.linalg.norm(np.array(e.data["coords"][:2]) - drone[e.frame]) < 20 for e in detected)

    clients = [SimulatorClient(truth_server.url) for _ in range(5)]
    try:
        for client in clients[:4]:
            client.emit("sensor_frame", flights[0].frames[0].data)
        truth_server.wait_processed(len(flights) * len(flights[0].frames) + 4)  # the four are connected
        clients[4].emit("sensor_frame", flights[0].frames[0].data)
        line = truth_server.wait_for_line("Refused the simulator connection")
        assert line.endswith("already serving 4 (--max-connections 4)")
        clients[-1].closed.wait(5)
        assert [client.closed.is_set() for client in clients] == [False] * 4 + [True]  # the fifth is disconnected
        health = truth_server.health()
        assert len(health["connections"]) == 4 and health["connections_refused"] == 1
    finally:
        for client in clients:
            client.close()


def test_a_second_client_changes_nothing_the_first_is_told(truth_server, synthetic_flight):
    flight = synthetic_flight
    alone = play(flight, truth_server.url, lockstep=True, settle_s=0.2)
    other_scene = moved(flight, 25.0, -10.0)
    together = play_at_once(truth_server.url, [flight, other_scene], lockstep=True, settle_s=0.2)
    first, second = together

    def answers(responses) -> list[tuple]:
        return [(r.frame, r.name, {k: v for k, v in r.data.items() if k != "id"}) for r in responses]

    assert first[0] == alone[0] == len(flight.frames) and second[0] == len(flight.frames)
    assert answers(first[1]) == answers(alone[1]) and any(r.name == DETECTED for r in alone[1])
    assert answers(second[1]) != answers(first[1])
