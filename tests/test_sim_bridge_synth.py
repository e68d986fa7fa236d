"""Synthetic flights: frames as the simulator sends them, and truth consistent with the images."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from flight_helpers import FRAMES, expected_transitions

from sim_bridge import synth
from sim_bridge.flight import read_flight
from sim_bridge.geometry import Intrinsics, pixel_to_world
from sim_bridge.protocol import parse_sensor_frame
from sim_bridge.synth import IMAGE_SIZE, OTHER, TARGET, parse_ranges, synthesize

MAX_TRUTH_ERROR_M = 0.05


def test_frames_are_simulator_frames_with_truth(synthetic_flight):
    flight = synthetic_flight
    assert len(flight.frames) == FRAMES and flight.header["intrinsics"]["fx"] == IMAGE_SIZE
    for frame in flight.frames[::7]:
        decoded = parse_sensor_frame(frame.data)
        assert decoded.rgb.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and decoded.depth_m.shape == (IMAGE_SIZE, IMAGE_SIZE)
        assert frame.truth.mask.shape == (IMAGE_SIZE, IMAGE_SIZE)
        assert frame.truth.visible == bool((frame.truth.mask == TARGET).any())
        assert frame.data["pose"].count(",") == 5 and decoded.gimbal_pose.z < decoded.pose.z
    # patrol, then follow, then lose it: the flight both finds and loses the target
    assert [t["event"] for t in expected_transitions(flight)] == ["found", "lost"]
    target = [frame.truth.mask == TARGET for frame in flight.frames]
    red = [
        parse_sensor_frame(frame.data).rgb[mask].mean(axis=0)
        for frame, mask in zip(flight.frames, target)
        if mask.sum() > 50
    ]
    assert red and all(r[0] > 2 * r[1] and r[0] > 2 * r[2] for r in red)  # the target is dressed in red


def test_mask_centroid_back_projects_onto_the_truth_position(synthetic_flight):
    intrinsics = Intrinsics.default(IMAGE_SIZE)
    checked = 0
    for frame in synthetic_flight.frames:
        mask = frame.truth.mask == TARGET
        if mask.sum() < 20:
            continue
        decoded = parse_sensor_frame(frame.data)
        rows, cols = np.nonzero(mask)
        depth = np.nanmean(decoded.depth_m[mask])
        position = pixel_to_world((cols.mean(), rows.mean()), depth, intrinsics, decoded.gimbal_pose)
        assert np.linalg.norm(position - frame.truth.position) < MAX_TRUTH_ERROR_M, frame.index
        checked += 1
    assert checked > FRAMES // 3


def test_same_seed_same_bytes(tmp_path):
    synthesize(tmp_path / "a.flight.jsonl.gz", 3, seed=7)
    synthesize(tmp_path / "b.flight.jsonl.gz", 3, seed=7)
    synthesize(tmp_path / "c.flight.jsonl.gz", 3, seed=8)
    a, b, c = ((tmp_path / f"{name}.flight.jsonl.gz").read_bytes() for name in "abc")
    assert a == b and a != c


def test_tracker_options_hide_the_target_add_a_distractor_and_stop_it(tmp_path):
    path = tmp_path / "options.flight.jsonl.gz"
    synthesize(path, 30, seed=1, target_speed=0.0, wobble=0.3, hidden={12, 13}, distractors={15})
    flight = read_flight(path)
    assert (
        flight.header["source"]
        == "sim_bridge.synth frames=30 seed=1 target_speed=0 wobble=0.3 hide=12-13 distractor=15"
    )
    target = [np.count_nonzero(frame.truth.mask == TARGET) for frame in flight.frames]
    assert target[11] > 100 and target[12] == target[13] == 0 and target[14] > 100
    assert not flight.frames[12].truth.visible and flight.frames[14].truth.visible
    others = [np.count_nonzero(frame.truth.mask == OTHER) for frame in flight.frames]
    red = parse_sensor_frame(flight.frames[15].data).rgb[flight.frames[15].truth.mask == OTHER]
    assert others[15] > others[14] + 100 and (red[:, 0] > 2 * red[:, 1]).mean() > 0.5  # dressed like the target
    still = [frame.truth.position for frame in flight.frames if frame.truth.visible]
    assert np.ptp(np.array(still)[:, :2], axis=0).max() < 0.5  # a standing target (its visible part shifts a little)


def test_parse_ranges():
    assert doctest.testmod(synth).failed == 0
    assert parse_ranges("3, 7-9,") == {3, 7, 8, 9} and parse_ranges("") == set()
    for bad in ("a", "5-3", "-1"):
        with pytest.raises(ValueError):
            parse_ranges(bad)
