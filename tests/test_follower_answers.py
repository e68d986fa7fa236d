"""follower.answers: a tracker's decisions as the events the simulator receives, markers numbered per answerer."""

from __future__ import annotations

import numpy as np

from follower.answers import Answerer
from follower.pipeline import Detection
from follower.tracking import Decision, FrameTracker, KalmanTracker, Status
from sim_bridge import protocol


def seen(x: float) -> Detection:
    return Detection(100, (128.0, 128.0), 10.0, np.array([x, 0.0, 0.9]))


def test_a_position_is_detected_with_a_fresh_box_marker_and_a_loss_is_object_lost():
    answerer, tracker = Answerer(), FrameTracker(lost_after=1)
    answers = [answerer.answer(tracker.update(detection)) for detection in [seen(1.0), seen(2.5), None, None, None]]
    assert answers == [
        [protocol.object_detected([1.0, 0.0, 0.9]), protocol.create_box_marker(0, [1.0, 0.0, 0.9])],
        [protocol.object_detected([2.5, 0.0, 0.9]), protocol.create_box_marker(1, [2.5, 0.0, 0.9])],
        [],  # holding
        [protocol.object_lost()],
        [],  # idle
    ]


def test_the_wire_payloads_are_those_the_simulator_always_received():
    (detected, marker) = Answerer().answer(Decision(Status.CONFIRMED, (1.0, -2.0, 0.5)))
    assert (detected.name, detected.data) == ("object_detected", {"coords": [1.0, -2.0, 0.5]})
    assert marker.name == "create_box_marker" and marker.data["id"] == 0
    assert marker.data["pose"] == [1.0, -2.0, 0.5, 0.0, 0.0, 0.0]
    assert Answerer().answer(Decision(Status.LOST)) == [protocol.Event("object_lost", {"data": ""})]


def test_each_answerer_numbers_its_own_markers():
    first, second = Answerer(), Answerer()
    tracking = Decision(Status.TRACKING, (1.0, 0.0, 0.9))
    ids = [first.answer(tracking)[1].data["id"] for _ in range(3)] + [second.answer(tracking)[1].data["id"]]
    assert ids == [0, 1, 2, 0]


def test_the_kalman_trackers_silent_statuses_send_nothing():
    answerer, tracker = Answerer(), KalmanTracker()
    candidate = tracker.update(seen(5.0), 0.0)
    assert candidate.status is Status.CANDIDATE and answerer.answer(candidate) == []
    confirmed = tracker.update(seen(5.0), 0.2)
    assert [event.name for event in answerer.answer(confirmed)] == ["object_detected", "create_box_marker"]
