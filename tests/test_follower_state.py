"""follower.state and follower.connections: a follower per connection, each with its single newest-frame slot,
turns on the network, counters, log lines, health; no sockets."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from follower.connections import Connections
from follower.pipeline import Detection, FrameResult
from follower.state import FollowerState, RateLimiter
from follower.tracking import FrameTracker, KalmanTracker
from sim_bridge.geometry import Pose
from sim_bridge.protocol import NumberFormatError, SensorFrame


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def result(found: bool, t: float = 0.0, x: float = 1.0) -> FrameResult:
    """A processed frame at time ``t`` (s), with the target at (x, 2, 3) when ``found``."""
    detection = Detection(50, (10.0, 20.0), 12.0, np.array([x, 2.0, 3.0])) if found else None
    pose = Pose(0.0, 0.0, 10.0, 0.0, 45.0, 0.0)
    frame = SensorFrame(t, pose, pose, np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32))
    return FrameResult(frame=frame, target_pixels=50 if found else 0, detection=detection)


def connected(*sids: str, clock=None, make_tracker=KalmanTracker, **options) -> Connections:
    connections = Connections(make_tracker, clock=clock or FakeClock(), **options)
    for sid in sids:
        assert connections.connect(sid)
    return connections


def test_overload_drops_stale_frames_instead_of_queueing_them():
    connections = connected("a")
    assert connections.offer("a", "first") is True  # idle: this caller runs the processing loop
    state, first = connections.take()
    for n in range(10):  # ten frames arrive while the first is processed
        assert connections.offer("a", n) is False
    assert connections.take()[1].message == 9
    assert connections.take() is None and not connections.busy
    assert first.message == "first" and state.counts["dropped"] == 9 and state.counts["received"] == 11
    assert connections.totals.counts["dropped"] == 9
    assert connections.offer("a", "later") is True  # idle again


def test_connections_take_turns_and_each_drops_only_its_own_stale_frames():
    connections = connected("fast", "slow", "idle")
    connections.offer("fast", "f0")
    connections.take()  # the network is busy with f0 from here on
    for n in range(1, 6):
        connections.offer("fast", f"f{n}")
        if n == 2:
            connections.offer("slow", "s0")
    served = []
    while (turn := connections.take()) is not None:
        served.append(turn[1].message)
        if turn[1].message == "f5":
            connections.offer("fast", "f6")  # arrive while the slow one waits its turn
            connections.offer("fast", "f7")
    assert served == ["f5", "s0", "f7"]
    fast, slow = connections.get("fast"), connections.get("slow")
    assert (fast.counts["dropped"], slow.counts["dropped"], connections.get("idle").counts["received"]) == (5, 0, 0)
    assert connections.offer("stranger", "x") is False and connections.totals.counts["received"] == 9


def test_each_connection_has_its_own_tracker_and_mode():
    connections = connected("a", "b", make_tracker=lambda: FrameTracker(lost_after=1))
    for sid, x in (("a", 1.0), ("b", 9.0)):
        connections.offer(sid, None)
        state, pending = connections.take()
        events = state.complete(pending, result(True, x=x))
        assert events[0].data["coords"][0] == x
    assert connections.get("a").mode.value == connections.get("b").mode.value == "FOLLOW"
    assert connections.get("a").last_position[0] == 1.0 and connections.get("b").last_position[0] == 9.0
    connections.disconnect("a")
    assert connections.get("a") is None and connections.get("b").mode.value == "FOLLOW"
    assert connections.following() == 1 and connections.totals.counts["found"] == 2


def test_connections_beyond_the_maximum_are_refused_with_a_line(caplog):
    connections = connected("a", "b", max_connections=2)
    assert connections.connect("c", "10.0.0.3") is False
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert line == "Refused the simulator connection c from 10.0.0.3: already serving 2 (--max-connections 2)"
    connections.disconnect("a")
    assert connections.connect("c") and connections.refused == 1 and len(connections) == 2


def test_the_main_connection_is_the_one_asked_for_else_the_latest():
    connections = connected("a", "b")
    assert connections.main()[0] == "b" and connections.main("a")[0] == "a" and connections.main("gone")[0] == "b"
    connections.disconnect("b")
    assert connections.main()[0] == "a"
    connections.disconnect("a")
    assert connections.main() is None and connections.health()["mode"] == "PATROL"


def test_found_and_lost_are_logged_once(caplog):
    state = FollowerState(FrameTracker(lost_after=1))
    caplog.set_level(logging.INFO, logger="follower")
    state.offer("sim", None)
    pending = state.take()
    assert [event.name for event in state.complete(pending, result(True))] == [
        "object_detected",
        "create_box_marker",
    ]
    state.complete(pending, result(True))
    assert state.complete(pending, result(False)) == []
    assert [event.name for event in state.complete(pending, result(False))] == ["object_lost"]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("Target found!" in m for m in messages) == 1
    assert sum("Target lost!" in m for m in messages) == 1
    assert state.counts["detections"] == 2 and state.counts["processed"] == 4
    assert state.health()["last_position"] == [1.0, 2.0, 3.0] and state.health()["tracker"] == "none"


def test_the_kalman_tracker_logs_found_on_confirmation_and_counts_its_decisions(caplog):
    state = FollowerState(KalmanTracker(), clock=FakeClock())
    caplog.set_level(logging.INFO, logger="follower")
    state.offer("sim", None)
    pending = state.take()
    seen = [result(True, 0.0), result(True, 0.2), result(True, 0.4, x=9.0)]  # a target, then far off
    frames = [*seen, *(result(False, 0.6 + 0.2 * i) for i in range(7))]
    names = [[event.name for event in state.complete(pending, frame)] for frame in frames]
    assert names[0] == [] and names[1] == ["object_detected", "create_box_marker"]
    assert names[2] == names[3] == names[4] == ["object_detected", "create_box_marker"]  # an outlier, then coasting
    assert names[5:8] == [[]] * 3 and names[8] == ["object_lost"] and names[9] == []
    messages = [record.getMessage() for record in caplog.records]
    (found,) = [m for m in messages if "Target found!" in m]
    assert found.startswith("Target found! at (1.00, 2.00, 3.00) m, 50 px, depth 12.0 m")
    assert [m for m in messages if "Target lost!" in m] == ["Target lost! after 7 frames without it"]
    counts = state.counts
    assert (counts["found"], counts["lost"], counts["detections"], counts["processed"]) == (1, 1, 3, 10)
    assert (counts["candidate_frames"], counts["track_misses"], counts["coasting_frames"]) == (1, 1, 3)
    assert state.last_decision.status.value == "idle" and state.mode.value == "PATROL"


def test_rejections_warn_at_most_once_per_interval_per_field(caplog):
    clock = FakeClock()
    state = FollowerState(warn_interval=5.0, clock=clock)
    state.offer("sim", None)
    pending = state.take()
    for _ in range(3):
        state.reject(pending, NumberFormatError("pose", "expected six numbers"))
    state.reject(pending, NumberFormatError("gimbal_pose", "expected six numbers"))
    clock.now += 5.0
    state.reject(pending, NumberFormatError("pose", "expected six numbers"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "pose: expected six numbers" in warnings[0] and "gimbal_pose" in warnings[1]
    assert "(2 more like it since the last warning)" in warnings[2]
    assert state.counts["rejected"] == 5


def test_rate_limiter():
    clock = FakeClock()
    limiter = RateLimiter(1.0, clock)
    assert limiter.allow("k") == (True, 0)
    assert limiter.allow("k") == (False, 0)
    assert limiter.allow("other") == (True, 0)
    clock.now += 1.0
    assert limiter.allow("k") == (True, 1)


def test_failures_are_counted_and_logged_with_traceback(caplog):
    state = FollowerState()
    state.offer("sim", None)
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        state.fail(state.take(), error)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "boom" in record.getMessage() and record.exc_info
    assert state.health()["frames_failed"] == 1


def test_stats_line_and_health():
    clock = FakeClock()
    connections = connected("sim", "other", clock=clock)
    assert connections.stats_line() is None  # nothing arrived
    for latency in (0.010, 0.020, 0.030, 0.040):
        connections.offer("sim", None)
        state, pending = connections.take()
        clock.now += latency
        state.complete(pending, result(False))
        connections.take()
    connections.offer("sim", None)
    connections.offer("sim", None)  # one dropped
    clock.now += 0.9
    line = connections.stats_line()
    assert line.startswith(
        "stats: 4.0 frames/s, latency p50 25.0 ms p95 38.5 ms, dropped 1, rejected 0, connections 2 (0 following)"
    )
    health = connections.health()
    assert health["frames_processed"] == 4 and health["frames_dropped"] == 1
    assert health["last_frame_age_s"] == pytest.approx(0.9)
    assert health["mode"] == "PATROL" and health["main_connection"] == "other" and health["tracker"] == "kalman"
    sim, other = health["connections"]
    assert (sim["sid"], sim["frames_processed"], sim["last_latency_ms"], sim["tracker_status"]) == (
        "sim",
        4,
        40.0,
        "idle",
    )
    assert (other["sid"], other["frames_received"], other["last_frame_age_s"]) == ("other", 0, None)
    assert connections.stats_line() is None
