"""sim_bridge.geometry against points computed by hand."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from sim_bridge import geometry
from sim_bridge.geometry import Intrinsics, Pose

K256 = Intrinsics.default(256)


def test_docstring_examples():
    assert doctest.testmod(geometry).failed == 0


def test_default_intrinsics_are_the_original_followers():
    assert Intrinsics.default(256) == Intrinsics(256.0, 256.0, 128.0, 128.0)


@pytest.mark.parametrize(
    ("angles", "vector", "expected"),
    [
        ((0, 0, 90), (1, 0, 0), (0, 1, 0)),  # yaw turns forward into left
        ((0, 90, 0), (1, 0, 0), (0, 0, -1)),  # positive pitch points forward down
        ((90, 0, 0), (0, 1, 0), (0, 0, 1)),  # roll turns left into up
        ((90, 0, 90), (0, 0, 1), (1, 0, 0)),  # roll first, then yaw: z -> -y -> x
        ((0, 90, 90), (1, 0, 0), (0, 0, -1)),  # pitch then yaw: down stays down
        ((0, 0, -270), (1, 0, 0), (0, 1, 0)),  # angles below -180 need no wrapping
    ],
)
def test_rotation_order_is_rz_ry_rx(angles, vector, expected):
    np.testing.assert_allclose(geometry.euler_deg_to_matrix(*angles) @ vector, expected, atol=1e-12)


def test_back_project_column_is_lateral_and_row_is_vertical():
    # column 160 is 32 px right of centre, row 96 is 32 px above it; at 10 m that is 1.25 m each way
    np.testing.assert_allclose(geometry.back_project((160.0, 96.0), 10.0, K256), (10.0, -1.25, 1.25))


def test_pixel_to_world_by_hand():
    pose = Pose(1.0, 2.0, 3.0, 0.0, 0.0, 90.0)
    # camera point (10, -1.25, 1.25); yaw 90 maps (x, y) to (-y, x): (1.25, 10, 1.25); plus t
    np.testing.assert_allclose(geometry.pixel_to_world((160.0, 96.0), 10.0, K256, pose), (2.25, 12.0, 4.25))


def test_looking_straight_down():
    pose = Pose(5.0, -3.0, 20.0, 0.0, 90.0, 0.0)
    # 25.6 px right of centre at 20 m depth: 2 m to the camera's right, which is world -y when facing down
    np.testing.assert_allclose(geometry.pixel_to_world((153.6, 128.0), 20.0, K256, pose), (5.0, -5.0, 0.0), atol=1e-9)
    # a row below the centre is behind the drone (world -x) when the camera faces down
    np.testing.assert_allclose(geometry.pixel_to_world((128.0, 153.6), 20.0, K256, pose), (3.0, -3.0, 0.0), atol=1e-9)


def test_projection_round_trips():
    rng = np.random.default_rng(1)
    intrinsics = Intrinsics(200.0, 210.0, 120.0, 130.0)
    for _ in range(100):
        pose = Pose(*rng.uniform(-50, 50, 3), *rng.uniform(-400, 400, 3))
        pixel, depth = tuple(rng.uniform(0, 256, 2)), rng.uniform(0.5, 50)
        world = geometry.pixel_to_world(pixel, depth, intrinsics, pose)
        np.testing.assert_allclose(geometry.world_to_pixel(world, intrinsics, pose), (*pixel, depth))


def test_project_by_hand_and_behind_the_camera():
    assert geometry.project(np.array([10.0, -1.25, 1.25]), K256) == (160.0, 96.0, 10.0)
    with pytest.raises(ValueError, match="in front of the camera"):
        geometry.project(np.array([-1.0, 0.0, 0.0]), K256)


def test_scale_pixel_is_centre_aligned():
    assert geometry.scale_pixel((0.0, 0.0), (128, 128), (256, 256)) == (0.5, 0.5)
    assert geometry.scale_pixel((63.5, 63.5), (128, 128), (256, 256)) == (127.5, 127.5)
    assert geometry.scale_pixel((79.5, 0.0), (160, 160), (256, 256)) == pytest.approx((127.5, 0.3))


def test_decode_depth_in_float_with_empty_and_saturated_as_nan():
    codes = np.array([[0, 1, 51, 200, 254, 255]], np.uint8)
    depth = geometry.decode_depth(codes)
    assert depth.dtype == np.float32
    assert np.isnan(depth[0, 0]) and np.isnan(depth[0, 5])
    # 200 * 50 overflows uint8 arithmetic: the decoding must not
    np.testing.assert_allclose(depth[0, 1:5], [50 / 255, 10.0, 200 * 50 / 255, 254 * 50 / 255], rtol=1e-6)


def test_encode_depth_rounds_clips_and_round_trips():
    codes = geometry.encode_depth(np.array([np.nan, -1.0, 10.0, 10.09, 49.9, 75.0]))
    assert codes.tolist() == [0, 0, 51, 51, 254, 255]
    all_codes = np.arange(1, 255, dtype=np.uint8)
    assert (geometry.encode_depth(geometry.decode_depth(all_codes)) == all_codes).all()
