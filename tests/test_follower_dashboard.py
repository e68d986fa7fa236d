"""follower.dashboard and follower.metrics without sockets: the overlay, the page's state, the event stream,
the Prometheus exposition; and the class map the pipeline keeps for them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from follower import dashboard as dashboard_module
from follower.connections import Connections
from follower.dashboard import CLASS_COLOURS_RGB, Dashboard, render_overlay
from follower.metrics import FollowerMetrics
from follower.pipeline import Detection, FrameResult, class_map, target_probabilities
from follower.state import FollowerState, rejection_reason
from follower.tracking import FrameTracker, KalmanTracker, Status
from models.imaging import PEOPLE_CLASS, TARGET_CLASS
from sim_bridge.geometry import Pose
from sim_bridge.protocol import NumberFormatError, SensorFrame

SIZE = 64  # segmentation side; frames are 128x128
POSE = Pose(1.0, 2.0, 10.0, 0.0, 45.0, 0.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def softmax_map(target: tuple[slice, slice] | None = None, people: tuple[slice, slice] | None = None) -> np.ndarray:
    """Class probabilities (SIZE, SIZE, 3): background everywhere but the given regions."""
    probabilities = np.zeros((SIZE, SIZE, 3), np.float32)
    probabilities[..., 0] = 0.9
    probabilities[..., 1:] = 0.05
    for region, cls in ((people, PEOPLE_CLASS), (target, TARGET_CLASS)):
        if region is not None:
            probabilities[region] = 0.05
            probabilities[(*region, cls)] = 0.9
    return probabilities


def frame_result(segmentation: np.ndarray | None, detection: Detection | None = None, pose: Pose = POSE) -> FrameResult:
    frame = SensorFrame(0.0, pose, pose, np.full((128, 128, 3), 100, np.uint8), np.full((128, 128), 10.0))
    timings = {"decode": 0.002, "segment": 0.02, "locate": 0.001}
    return FrameResult(frame, 0 if detection is None else detection.pixels, detection, timings, segmentation)


def detection_at(position: tuple[float, float, float], centroid: tuple[float, float] = (64.0, 40.0)) -> Detection:
    return Detection(40, centroid, 10.0, np.array(position))


def test_class_map_takes_the_target_by_threshold_and_people_by_argmax():
    probabilities = softmax_map(target=(slice(10, 20), slice(10, 20)), people=(slice(40, 50), slice(0, 5)))
    probabilities[12, 12] = [0.3, 0.35, 0.35]  # the target's probability is under the threshold here
    classes = class_map(probabilities, 0.5)
    assert classes.dtype == np.uint8 and classes.shape == (SIZE, SIZE)
    assert classes[15, 15] == TARGET_CLASS and classes[12, 12] == PEOPLE_CLASS
    assert classes[45, 2] == PEOPLE_CLASS and classes[0, 0] == 0
    np.testing.assert_array_equal(target_probabilities(probabilities), probabilities[..., TARGET_CLASS])
    target_only = probabilities[..., TARGET_CLASS]
    assert target_probabilities(target_only) is target_only
    np.testing.assert_array_equal(class_map(target_only, 0.5), np.where(target_only > 0.5, TARGET_CLASS, 0))


def test_the_pipeline_and_the_class_numbers_import_without_keras():
    import subprocess
    import sys

    code = "import sys, follower.pipeline, models.imaging; print('keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_overlay_colours_outline_and_centroid():
    probabilities = softmax_map(target=(slice(10, 30), slice(20, 40)), people=(slice(50, 60), slice(5, 15)))
    result = frame_result(probabilities, detection_at((5, 1, 0.9), centroid=(60.0, 40.0)))
    image = render_overlay(result, 0.5)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    blue, green = image[30, 70].astype(int), image[110, 20].astype(int)  # in the target (scaled x2), people
    assert blue[2] > blue[0] + 60 and blue[2] > blue[1] + 40, blue
    assert green[1] > green[0] + 60 and green[1] > green[2] + 60, green
    assert tuple(image[20, 50]) == dashboard_module.OUTLINE_RGB  # the blob's top edge
    assert tuple(image[40, 60]) == dashboard_module.CENTROID_RGB
    assert tuple(image[0, 127]) == (100, 100, 100)
    np.testing.assert_array_equal(render_overlay(frame_result(None), 0.5), result.frame.rgb)
    assert set(CLASS_COLOURS_RGB) == {PEOPLE_CLASS, TARGET_CLASS}


def one_connection(clock: FakeClock, make_tracker=KalmanTracker, sid: str = "sim") -> tuple[Connections, FollowerState]:
    """The connections of a server with one simulator connected, and its follower."""
    connections = Connections(make_tracker, clock=clock)
    connections.connect(sid)
    return connections, connections.get(sid)


def test_snapshot_rates_latency_mode_and_the_last_minute():
    clock = FakeClock()
    connections, state = one_connection(clock, FrameTracker)
    board = Dashboard(connections, 4567, 0.5)
    snapshot = board.snapshot()
    assert snapshot["waiting"] and snapshot["port"] == 4567 and snapshot["mode"] == "PATROL"
    assert snapshot["fps"] == 0.0 and snapshot["latency_ms"] is None and snapshot["track"]["drone"] == []

    for i in range(20):  # 4 s at 5 frames/s, the target seen from the 10th frame on
        state.offer("sim", {})
        pending = state.take()
        clock.now += 0.05
        detection = detection_at((10.0 + i, -3.0, 0.9)) if i >= 10 else None
        result = frame_result(None, detection, Pose(float(i), 0.0, 10.0, 0, 45, 0))
        state.complete(pending, result)
        board.observe("sim", state, result)
        state.take()
        clock.now += 0.15
    snapshot = board.snapshot()
    assert not snapshot["waiting"] and snapshot["mode"] == "FOLLOW"
    assert snapshot["mode_for_s"] == pytest.approx(10 * 0.2 - 0.05, abs=0.06)
    assert snapshot["fps"] == pytest.approx(5.0, rel=0.05)
    assert snapshot["latency_ms"] == {"p50": 50.0, "p95": 50.0}
    assert snapshot["target"] == [29.0, -3.0, 0.9] and snapshot["processed"] == 20
    assert len(snapshot["track"]["drone"]) == 20 and snapshot["track"]["drone"][-1] == [19.0, 0.0]
    assert snapshot["track"]["targets"][0] == [20.0, -3.0] and len(snapshot["track"]["targets"]) == 10
    assert snapshot["track"]["detections"] == snapshot["track"]["targets"]  # every detection sent
    assert snapshot["tracker"]["name"] == "none" and snapshot["tracker"]["status"] == "tracking"
    json.dumps(snapshot)

    clock.now += 58.0  # the first frames are now more than a minute old
    snapshot = board.snapshot()
    assert len(snapshot["track"]["drone"]) < 20 and snapshot["fps"] == 0.0 and snapshot["latency_ms"] is None


def test_frames_are_encoded_only_when_newer_and_at_most_a_few_times_per_second():
    clock = FakeClock()
    connections, state = one_connection(clock)
    encoded = []
    board = Dashboard(connections, 4567, 0.5, offload=lambda fn, *args: encoded.append(args) or fn(*args))
    assert board.frame_images() is None
    board.observe("sim", state, frame_result(softmax_map()))
    first = board.frame_images()
    assert first["seq"] == 1 and first["overlay"].startswith("data:image/jpeg;base64,")
    assert first["raw"].startswith("data:image/jpeg;base64,")
    assert board.frame_images() is first and len(encoded) == 1  # nothing newer
    board.observe("sim", state, frame_result(softmax_map()))
    assert board.frame_images() is first  # newer, but too soon
    clock.now += dashboard_module.FRAME_INTERVAL_S
    assert board.frame_images()["seq"] == 2 and len(encoded) == 2


def test_the_stream_sends_state_and_each_new_frame_once_until_closed():
    clock = FakeClock()
    connections, state = one_connection(clock)
    board = Dashboard(connections, 4567, 0.5)
    board.sleep = lambda seconds: setattr(clock, "now", clock.now + seconds)
    stream = board.stream()
    first = json.loads(next(stream).removeprefix("data: "))
    assert first["waiting"] and "frame" not in first and board.viewers == 1
    board.observe("sim", state, frame_result(softmax_map()))
    assert json.loads(next(stream)[6:])["frame"]["seq"] == 1
    assert "frame" not in json.loads(next(stream)[6:])
    board.close()
    with pytest.raises(StopIteration):
        next(stream)
    assert board.viewers == 0


def test_metrics_are_read_back_from_the_exposition():
    clock = FakeClock()
    connections, state = one_connection(clock, lambda: FrameTracker(lost_after=1))
    metrics = FollowerMetrics(connections)
    outcomes = [detection_at((1.0, 2.0, 0.9)), None, None, "reject", "reject"]
    for outcome in outcomes:
        state.offer("sim", {})
        pending = state.take()
        clock.now += 0.03
        if outcome == "reject":
            state.reject(pending, NumberFormatError("gimbal_pose", "expected six numbers"))
        else:
            result = frame_result(None, outcome)
            state.complete(pending, result)
            metrics.observe(result.timings, state.last_latency_s)
        state.take()
    state.offer("sim", {})
    state.offer("sim", {})  # replaces the waiting frame: one dropped

    families = {family.name: family for family in text_string_to_metric_families(metrics.exposition().decode())}
    value = {name: family.samples[0].value for name, family in families.items() if len(family.samples) == 1}
    assert value["follower_frames"] == 7 and value["follower_frames_processed"] == 3
    assert value["follower_frames_dropped"] == 1 and value["follower_detections"] == 1
    assert value["follower_target_found"] == 1 and value["follower_target_lost"] == 1
    assert value["follower_following"] == 0
    rejected = families["follower_frames_rejected"].samples
    assert [(s.labels, s.value) for s in rejected] == [({"reason": "number_format"}, 2.0)]
    assert rejection_reason(NumberFormatError("x", "y")) == "number_format"
    latency = {s.name: s.value for s in families["follower_latency_seconds"].samples if not s.labels.get("le")}
    assert latency["follower_latency_seconds_count"] == 3
    assert latency["follower_latency_seconds_sum"] == pytest.approx(0.09)
    stages = {
        s.labels["stage"]: s.value for s in families["follower_stage_seconds"].samples if s.name.endswith("_count")
    }
    served_only = ("queue", "to_worker", "to_hub", "decide", "emit")  # timed by the server, not the pipeline
    assert stages == {"decode": 3, "inference": 3, "locate": 3} | dict.fromkeys(served_only, 0)
    assert state.last_rejection == "gimbal_pose: expected six numbers"

    other = FollowerMetrics(Connections(KalmanTracker, clock=clock))  # a second server in the same process
    assert b"follower_frames_total 0.0" in other.exposition()


def test_the_tracker_on_the_page_and_in_the_metrics():
    clock = FakeClock()
    connections, state = one_connection(clock)  # the default tracker: kalman, 2 of 3
    board, metrics = Dashboard(connections, 4567, 0.5), FollowerMetrics(connections)
    outcomes = [(10.0, -3.0), (10.0, -3.0), (14.0, 2.0), None]  # candidate, confirmed, outlier, miss
    for i, outcome in enumerate(outcomes):
        state.offer("sim", {})
        pending = state.take()
        result = frame_result(None, None if outcome is None else detection_at((*outcome, 0.9)))
        result = dataclasses.replace(result, frame=dataclasses.replace(result.frame, timestamp=0.2 * i))
        state.complete(pending, result)
        board.observe("sim", state, result)
        state.take()
    tracker = board.snapshot()["tracker"]
    assert tracker["name"] == "kalman" and tracker["status"] == "coasting" and tracker["misses"] == 2
    assert tracker["candidates"] == [{"position": [14.0, 2.0, 0.9], "hits": 1}]
    assert (tracker["candidate_frames"], tracker["track_misses"], tracker["coasting_frames"]) == (1, 1, 2)
    track = board.snapshot()["track"]
    assert len(track["detections"]) == 3 and len(track["targets"]) == 3  # the first detection was held back
    assert track["targets"][0] == [10.0, -3.0] and track["detections"][-1] == [14.0, 2.0]

    families = {family.name: family for family in text_string_to_metric_families(metrics.exposition().decode())}
    value = {name: family.samples[0].value for name, family in families.items() if len(family.samples) == 1}
    assert value["follower_candidate_frames"] == 1 and value["follower_track_misses"] == 1
    assert value["follower_coasting_frames"] == 2 and value["follower_candidates"] == 1
    assert value["follower_target_found"] == 1 and value["follower_following"] == 1
    status = {s.labels["status"]: s.value for s in families["follower_tracker_status"].samples}
    assert status["coasting"] == 1 and sum(status.values()) == 1 and len(status) == len(Status)


def test_the_page_lists_every_connection_and_shows_the_latest_or_the_one_asked_for():
    clock = FakeClock()
    connections, first = one_connection(clock, FrameTracker, sid="first")
    connections.connect("second")
    board, metrics = Dashboard(connections, 4567, 0.5), FollowerMetrics(connections)
    for sid, x in (("first", 5.0), ("second", 9.0)):
        state = connections.get(sid)
        state.offer(sid, {})
        clock.now += 0.02
        result = frame_result(softmax_map(), detection_at((x, 0.0, 0.9)) if sid == "first" else None)
        state.complete(state.take(), result)
        board.observe(sid, state, result)
    latest = board.snapshot()
    assert latest["connection"] == "second" and latest["mode"] == "PATROL" and latest["target"] is None
    assert [(c["sid"], c["mode"], c["frames"]) for c in latest["connections"]] == [
        ("first", "FOLLOW", 1),
        ("second", "PATROL", 1),
    ]
    chosen = board.snapshot("first")
    assert chosen["connection"] == "first" and chosen["mode"] == "FOLLOW" and chosen["target"] == [5.0, 0.0, 0.9]
    assert board.frame_images("first")["connection"] == "first" and board.frame_images()["connection"] == "second"
    stream = board.stream("first")
    assert json.loads(next(stream)[6:])["frame"]["connection"] == "first"
    board.close()

    exposition = metrics.exposition().decode()
    assert "follower_connections 2.0" in exposition and "follower_following 1.0" in exposition
    connections.disconnect("second")
    board.forget("second")
    assert board.snapshot("second")["connection"] == "first" and board.frame_images("second")["connection"] == "first"
    connections.disconnect("first")
    idle = board.snapshot()
    assert idle["waiting"] and idle["connections"] == [] and idle["connection"] is None
    assert board.frame_images() is None and json.dumps(idle)
    assert "follower_frames_processed_total 2.0" in metrics.exposition().decode()  # closed connections still count
