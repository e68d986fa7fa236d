"""follower.state: the single newest-frame slot, counters, log lines, health; no sockets."""

from __future__ import annotations

import logging

import numpy as np
import pytest

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


def test_overload_drops_stale_frames_instead_of_queueing_them():
    state = FollowerState()
    assert state.offer("a", "first") is True  # idle: this caller runs the processing loop
    first = state.take()
    for n in range(10):  # ten frames arrive while the first is processed
        assert state.offer("a", n) is False
    assert state.take().message == 9
    assert state.take() is None and not state.busy
    assert first.message == "first" and state.counts["dropped"] == 9 and state.counts["received"] == 11
    assert state.offer("a", "later") is True  # idle again


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
    state = FollowerState(clock=clock)
    assert state.stats_line() is None  # nothing arrived
    for latency in (0.010, 0.020, 0.030, 0.040):
        state.offer("sim", None)
        pending = state.take()
        clock.now += latency
        state.complete(pending, result(False))
        state.take()
    state.offer("sim", None)
    state.offer("sim", None)  # one dropped
    clock.now += 0.9
    line = state.stats_line()
    assert line.startswith("stats: 4.0 frames/s, latency p50 25.0 ms p95 38.5 ms, dropped 1, rejected 0")
    health = state.health()
    assert health["frames_processed"] == 4 and health["frames_dropped"] == 1
    assert health["last_frame_age_s"] == pytest.approx(0.9)
    assert health["mode"] == "PATROL"
    assert state.stats_line() is None


def test_disconnect_of_the_followed_client_returns_to_patrol():
    state = FollowerState(FrameTracker())
    state.offer("sim", None)
    state.complete(state.take(), result(True))
    state.offer("sim", "waiting")
    state.disconnected("other")
    assert state.mode.value == "FOLLOW"
    state.disconnected("sim")
    assert state.mode.value == "PATROL" and state.take() is None


def test_disconnect_of_the_client_that_fed_the_tracker_forgets_its_candidates():
    state = FollowerState(KalmanTracker())
    state.offer("sim", None)
    state.complete(state.take(), result(True))
    assert len(state.tracker.candidates) == 1 and state.mode.value == "PATROL"
    state.disconnected("other")
    assert len(state.tracker.candidates) == 1
    state.disconnected("sim")
    assert state.tracker.candidates == () and state.last_decision is None
