"""Synthetic flights: frames as the simulator sends them, and truth consistent with the images."""

from __future__ import annotations

import numpy as np
from flight_helpers import FRAMES, expected_transitions

from sim_bridge.geometry import Intrinsics, pixel_to_world
from sim_bridge.protocol import parse_sensor_frame
from sim_bridge.synth import IMAGE_SIZE, TARGET, synthesize

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
