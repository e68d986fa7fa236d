"""follower.tracking: the filter, the gate, the confirmation and coasting, on hand-made detection sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from follower.pipeline import Detection
from follower.tracking import (
    FRAME_INTERVAL_S,
    MAX_STEP_S,
    FrameTracker,
    KalmanTracker,
    Mode,
    Status,
    Track,
    TrackerSettings,
    make_tracker,
    time_step,
)

DT = 0.2  # 5 frames/s
MODEL = {"noise_m": 0.1, "noise_per_m": 0.02, "accel_noise": 1.0, "gate": 0.99}  # gate sizes the tests rely on


def seen(x: float, y: float = 0.0, z: float = 0.9, depth: float = 10.0) -> Detection:
    """A detection at world (x, y, z) metres, seen at ``depth`` metres."""
    return Detection(100, (128.0, 128.0), depth, np.array([x, y, z]))


def run(tracker, detections, start: int = 0):
    """The decisions on a sequence of detections (None: nothing seen), one frame every `DT` seconds."""
    return [tracker.update(detection, (start + i) * DT) for i, detection in enumerate(detections)]


def statuses(decisions) -> list[str]:
    return [decision.status.value for decision in decisions]


def following(**settings) -> KalmanTracker:
    """A Kalman tracker that has just confirmed a target standing at (10, 0)."""
    tracker = KalmanTracker(TrackerSettings(**settings))
    assert statuses(run(tracker, [seen(10.0), seen(10.0)])) == ["candidate", "confirmed"]
    return tracker


# ---------------------------------------------------------------------------------------------- the original


def test_frame_tracker_found_markers_and_lost_after_more_than_six_misses():
    tracker = FrameTracker(lost_after=6)
    first = tracker.update(seen(1.0))
    assert first.found and tracker.mode is first.mode is Mode.FOLLOW
    assert first.position == (1.0, 0.0, 0.9) and all(type(c) is float for c in first.position)
    second = tracker.update(seen(2.0))
    assert not second.found and second.status is Status.TRACKING and second.position == (2.0, 0.0, 0.9)
    for _ in range(6):
        decision = tracker.update(None)
        assert decision.position is None and not decision.lost and decision.status is Status.HOLDING
    decision = tracker.update(None)
    assert decision.lost and decision.position is None and tracker.mode is decision.mode is Mode.PATROL
    assert not tracker.update(None).lost  # lost only once
    assert tracker.update(seen(3.0)).found  # and found again


def test_frame_tracker_detection_resets_the_miss_count():
    tracker = FrameTracker(lost_after=2)
    tracker.update(seen(1.0))
    tracker.update(None), tracker.update(None)
    tracker.update(seen(1.0))
    assert not tracker.update(None).lost and not tracker.update(None).lost
    assert tracker.update(None).lost


def test_make_tracker_by_name():
    assert isinstance(make_tracker(TrackerSettings(tracker="none", lost_after=3)), FrameTracker)
    assert isinstance(make_tracker(TrackerSettings()), KalmanTracker)
    with pytest.raises(ValueError, match="tracker must be one of kalman, none. Received: tracker='kf'"):
        make_tracker(TrackerSettings(tracker="kf"))


# ---------------------------------------------------------------------------------------------- the filter


def test_one_step_is_the_textbook_predict_and_update():
    settings = TrackerSettings(noise_m=0.1, noise_per_m=0.02, accel_noise=1.0)
    track = Track(seen(10.0, 2.0, depth=20.0), 0.0, settings)
    sigma = 0.1 + 0.02 * 20.0
    np.testing.assert_allclose(track.kf.x, [10.0, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(np.diag(track.kf.P), [sigma**2, sigma**2, 4.0, 4.0])
    x, p = track.kf.x.copy(), track.kf.P.copy()

    track.predict(DT)
    f = np.eye(4)
    f[0, 2] = f[1, 3] = DT
    q1 = np.array([[DT**4 / 4, DT**3 / 2], [DT**3 / 2, DT**2]])  # white-noise acceleration, one axis, var 1
    q = np.zeros((4, 4))
    q[np.ix_([0, 2], [0, 2])] = q[np.ix_([1, 3], [1, 3])] = q1
    x, p = f @ x, f @ p @ f.T + q
    np.testing.assert_allclose(track.kf.P, p)

    detection = seen(10.3, 2.1, depth=10.0)
    r = np.eye(2) * (0.1 + 0.02 * 10.0) ** 2
    h = np.eye(2, 4)
    s = h @ p @ h.T + r
    y = detection.position[:2] - h @ x
    assert track.distance2(detection) == pytest.approx(y @ np.linalg.solve(s, y))
    gain = p @ h.T @ np.linalg.inv(s)
    track.update(detection)
    np.testing.assert_allclose(track.kf.x, x + gain @ y)
    np.testing.assert_allclose(track.kf.P, (np.eye(4) - gain @ h) @ p, atol=1e-12)
    assert track.position[2] == pytest.approx(0.9)


def test_a_walking_target_gets_its_velocity_and_the_prediction_follows_it():
    track = Track(seen(0.0), 0.0, TrackerSettings())
    for i in range(1, 30):
        track.predict(i * DT)
        track.update(seen(1.2 * i * DT, 0.5 * i * DT))
    np.testing.assert_allclose(track.kf.x[2:], [1.2, 0.5], atol=0.05)
    track.predict(30 * DT)
    np.testing.assert_allclose(track.position[:2], [1.2 * 30 * DT, 0.5 * 30 * DT], atol=0.05)


def test_noise_grows_with_depth_and_the_gate_is_the_chi_square_quantile():
    settings = TrackerSettings(noise_m=0.1, noise_per_m=0.02, gate=0.99)
    assert settings.measurement_sigma(0.0) == 0.1 and settings.measurement_sigma(30.0) == pytest.approx(0.7)
    assert settings.gate_distance2 == pytest.approx(9.2103, abs=1e-4)  # scipy.stats.chi2.ppf(0.99, 2)
    assert TrackerSettings(gate=1 - math.exp(-1)).gate_distance2 == pytest.approx(2.0)


def test_time_step_comes_from_the_timestamps_within_limits():
    assert time_step(10.0, 10.4) == pytest.approx(0.4)
    assert time_step(10.0, 10.0) == FRAME_INTERVAL_S and time_step(10.0, 9.0) == FRAME_INTERVAL_S
    assert time_step(10.0, 100.0) == MAX_STEP_S


# ---------------------------------------------------------------------------------------------- the gate


def test_a_far_detection_while_following_is_a_miss_and_a_near_one_is_not():
    tracker = following(**MODEL)
    near, far = run(tracker, [seen(10.2, 0.1), seen(13.0, 0.0)], start=2)
    assert near.status is Status.TRACKING and not near.outlier
    assert far.status is Status.COASTING and far.outlier and far.misses == 1
    assert [c.hits for c in far.candidates] == [1]  # the far detection started a candidate
    assert np.linalg.norm(np.subtract(far.position[:2], (10.1, 0.05))) < 0.3  # the target's prediction, not 13 m


def test_the_same_offset_passes_the_gate_at_a_larger_depth():
    offset = 2.0
    near = following(**MODEL)
    assert run(near, [seen(10.0 + offset, depth=5.0)], start=2)[0].outlier
    far = following(**MODEL)
    assert not run(far, [seen(10.0 + offset, depth=40.0)], start=2)[0].outlier


def test_a_single_frame_distractor_while_following_changes_nothing_sent():
    tracker = following()
    decisions = run(tracker, [seen(10.0), seen(14.0, 3.0), seen(10.0), seen(10.0), seen(10.0), seen(10.0)], start=2)
    assert statuses(decisions) == ["tracking", "coasting", "tracking", "tracking", "tracking", "tracking"]
    assert all(np.linalg.norm(np.subtract(d.position[:2], (10.0, 0.0))) < 0.2 for d in decisions)
    assert decisions[2].candidates and not decisions[-1].candidates  # the distractor's candidate is dropped
    assert tracker.mode is Mode.FOLLOW


# ---------------------------------------------------------------------------------------------- confirmation


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        ([seen(5.0), seen(5.1)], ["candidate", "confirmed"]),
        ([seen(5.0), None, seen(5.1)], ["candidate", "idle", "confirmed"]),
        ([seen(5.0), None, None, seen(5.1)], ["candidate", "idle", "idle", "candidate"]),  # 1 of the last 3
        ([seen(5.0), seen(15.0), seen(25.0), seen(5.0, 8.0)], ["candidate"] * 4),  # never twice in one gate
    ],
)
def test_two_detections_in_three_frames_within_one_gate_confirm(sequence, expected):
    tracker = KalmanTracker()
    decisions = run(tracker, sequence)
    assert statuses(decisions) == expected
    assert all(decision.position is None for decision in decisions if decision.status is not Status.CONFIRMED)


def test_confirmation_sends_the_filtered_position_once_found():
    tracker = KalmanTracker()
    candidate = tracker.update(seen(5.0, 1.0, 0.8), 0.0)
    assert candidate.position is None and candidate.candidates[0].hits == 1 and tracker.mode is Mode.PATROL
    confirmed = tracker.update(seen(5.2, 1.0, 1.0), DT)
    assert confirmed.found and tracker.mode is confirmed.mode is Mode.FOLLOW and not confirmed.candidates
    x, y, z = confirmed.position
    assert 5.0 < x < 5.2 and y == pytest.approx(1.0) and z == pytest.approx(0.9)  # filtered; mean height


def test_one_of_one_confirms_at_once_and_three_of_three_needs_three():
    assert statuses(run(KalmanTracker(TrackerSettings(confirm_hits=1, confirm_frames=1)), [seen(5.0)])) == ["confirmed"]
    strict = KalmanTracker(TrackerSettings(confirm_hits=3, confirm_frames=3))
    assert statuses(run(strict, [seen(5.0)] * 3)) == ["candidate", "candidate", "confirmed"]


# ---------------------------------------------------------------------------------------------- coasting


def test_coasting_then_holding_then_lost():
    tracker = following(coast_frames=3, lost_after=6)
    decisions = run(tracker, [None] * 8, start=2)
    assert statuses(decisions) == ["coasting"] * 3 + ["holding"] * 3 + ["lost", "idle"]
    assert [d.misses for d in decisions[:7]] == [1, 2, 3, 4, 5, 6, 7]
    assert all(d.position is not None for d in decisions[:3])
    assert decisions[6].lost and tracker.mode is Mode.PATROL
    assert all(d.position is None and not d.lost for d in decisions[3:6] + decisions[7:])
    assert [d.mode for d in decisions] == [Mode.FOLLOW] * 6 + [Mode.PATROL] * 2


def test_coasting_sends_the_prediction_of_a_moving_target():
    tracker = KalmanTracker()
    walk = [seen(1.0 * i * DT) for i in range(15)]
    run(tracker, walk)
    coasted = run(tracker, [None, None], start=15)
    assert [d.status for d in coasted] == [Status.COASTING, Status.COASTING]
    assert coasted[0].position[0] == pytest.approx(15 * DT, abs=0.1)
    assert coasted[1].position[0] == pytest.approx(16 * DT, abs=0.1)


@pytest.mark.parametrize("hidden", [1, 2, 3])
def test_an_occlusion_of_up_to_three_frames_keeps_follow(hidden):
    tracker = following()
    decisions = run(tracker, [None] * hidden + [seen(10.1)] + [None] * 2, start=2)
    assert statuses(decisions) == ["coasting"] * hidden + ["tracking", "coasting", "coasting"]
    assert all(d.position is not None for d in decisions)
    assert tracker.mode is Mode.FOLLOW


def test_a_target_confirmed_elsewhere_replaces_the_unseen_followed_one():
    tracker = following(**MODEL)
    decisions = run(tracker, [seen(30.0)] * 3, start=2)
    assert statuses(decisions) == ["coasting", "switched", "tracking"]
    assert decisions[0].outlier and decisions[1].outlier and not decisions[2].outlier
    assert decisions[1].position[0] == pytest.approx(30.0)
    assert tracker.mode is Mode.FOLLOW and not any(d.found or d.lost for d in decisions)


def test_a_lost_target_is_forgotten_and_found_again():
    tracker = following(coast_frames=0, lost_after=2)
    decisions = run(tracker, [None, None, None, seen(30.0), seen(30.0)], start=2)
    assert statuses(decisions) == ["holding", "holding", "lost", "candidate", "confirmed"]
    assert decisions[4].position[0] == pytest.approx(30.0)


def test_reset_forgets_everything():
    tracker = following()
    run(tracker, [seen(20.0)], start=2)
    tracker.reset()
    assert tracker.mode is Mode.PATROL and tracker.track is None and tracker.candidates == ()
    assert run(tracker, [seen(20.0)], start=3)[0].status is Status.CANDIDATE


def test_decision_as_recorded():
    tracker = following()
    record = run(tracker, [seen(14.0)], start=2)[0].to_json()
    assert record["status"] == "coasting" and record["misses"] == 1 and record["outlier"] is True
    assert len(record["position"]) == 3 and record["candidates"][0]["hits"] == 1
    assert record["candidates"][0]["position"] == [14.0, 0.0, 0.9]
