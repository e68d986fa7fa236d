"""follower.pipeline: decode → segment → locate, without sockets or a network (the trackers that decide:
test_follower_tracking)."""

from __future__ import annotations

import numpy as np
import pytest
from follower_helpers import render_frame

from follower.config import parse_args
from follower.pipeline import (
    Settings,
    blob_depth,
    largest_blob,
    locate,
    process_frame,
    target_mask,
)
from sim_bridge import geometry, protocol
from sim_bridge.geometry import Intrinsics, Pose

DOWN = Pose(0.0, 0.0, 20.0, 0.0, 90.0, 0.0)  # 20 m up, camera straight down, image top = world +x


def red_segmenter(rgb: np.ndarray) -> np.ndarray:
    """A stand-in for the network at half resolution: probability 1 where a pixel is strongly red."""
    small = rgb[::2, ::2].astype(int)
    return ((small[..., 0] > 150) & (small[..., 1] < 80)).astype(np.float32)


def test_target_mask_is_strictly_above_the_threshold():
    np.testing.assert_array_equal(target_mask(np.array([0.2, 0.5, 0.51]), 0.5), [False, False, True])


def test_largest_blob_and_its_centroid():
    mask = np.zeros((20, 20), bool)
    mask[2:4, 2:4] = True  # 4 px
    mask[10:13, 5:10] = True  # 15 px, centroid (7, 11)
    blob = largest_blob(mask)
    assert blob.pixels == 15 and blob.centroid == pytest.approx((7.0, 11.0))
    assert blob.mask.sum() == 15 and not blob.mask[2, 2]
    assert largest_blob(np.zeros((4, 4), bool)) is None


def test_blob_depth_is_a_median_in_metres_ignoring_empty_and_saturated_pixels():
    codes = np.full((8, 8), 51, np.uint8)  # 10 m
    codes[:4, :4] = [[200, 210, 0, 255]] * 4  # under the blob: 39.2, 41.2 m, no reading, saturated
    depth = geometry.decode_depth(codes)
    blob = np.zeros((4, 4), bool)
    blob[:2, :2] = True  # scaled x2: the top-left 4x4 of the depth image
    assert blob_depth(blob, depth) == pytest.approx((200 + 210) / 2 * 50 / 255, rel=1e-6)
    blob_on_nothing = np.zeros((8, 8), bool)
    blob_on_nothing[:4, 2:4] = True
    assert np.isnan(blob_depth(blob_on_nothing, depth))


def test_locate_scales_the_centroid_to_the_depth_image():
    mask = np.zeros((128, 128), bool)
    mask[70:80, 60:68] = True  # centroid (63.5, 74.5) at 128 px -> (127.5, 149.5) at 256 px
    depth = np.full((256, 256), 20.0, np.float32)
    pixels, detection = locate(mask, depth, DOWN, Settings())
    assert pixels == 80 and detection.pixels == 80
    assert detection.centroid == pytest.approx((127.5, 149.5))
    assert detection.depth_m == pytest.approx(20.0)
    # 21.5 rows below the centre at 20 m with fy = 256: 1.6796875 m behind; 0.5 px left: 0.0390625 m left
    np.testing.assert_allclose(detection.position, (-1.6796875, 0.0390625, 0.0), atol=1e-9)


def test_locate_needs_more_than_min_pixels_and_a_depth_reading():
    depth = np.full((64, 64), 20.0, np.float32)
    mask = np.zeros((64, 64), bool)
    mask[0, :10] = True
    assert locate(mask, depth, DOWN, Settings(min_pixels=10)) == (10, None)
    mask[1, 0] = True
    assert locate(mask, depth, DOWN, Settings(min_pixels=10))[1] is not None
    assert locate(mask, np.full_like(depth, np.nan), DOWN, Settings(min_pixels=10)) == (11, None)


def test_min_pixels_counts_native_frame_pixels_whatever_the_output_size():
    """The same 256x256 frame seen by a 64 px and a 256 px network: a 3x1 blob at 64 covers 48 frame pixels."""
    depth = np.full((256, 256), 20.0, np.float32)
    coarse = np.zeros((64, 64), bool)
    coarse[30:33, 30] = True
    fine = np.zeros((256, 256), bool)
    fine[120:132, 120:124] = True
    settings = Settings(min_pixels=47)
    for mask in (coarse, fine):
        pixels, detection = locate(mask, depth, DOWN, settings, frame_size=(256, 256))
        assert pixels == 48 and detection.pixels == 48
    assert locate(coarse, depth, DOWN, Settings(min_pixels=48), frame_size=(256, 256)) == (48, None)
    assert locate(coarse, depth, DOWN, settings) == (3, None)  # without a frame size: the mask's own pixels


def test_intrinsics_default_to_the_depth_width_and_can_be_overridden():
    assert Settings().intrinsics(256) == Intrinsics(256.0, 256.0, 128.0, 128.0)
    assert Settings(fx=300.0, cy=100.0).intrinsics(256) == Intrinsics(300.0, 256.0, 128.0, 100.0)


def test_process_frame_locates_the_target():
    truth = np.array([8.0, -2.0, 1.0])
    pose = Pose(0.0, 0.0, 10.0, 0.0, 45.0, 10.0)
    rgb, depth = render_frame(pose, truth)
    message = protocol.build_sensor_frame(0.0, pose, pose, rgb, depth)
    result = process_frame(message, red_segmenter, Settings())
    assert result.target_pixels > 10
    assert np.linalg.norm(result.detection.position - truth) < 0.2
    assert set(result.timings) == {"decode", "segment", "locate"}
    empty = process_frame(
        protocol.build_sensor_frame(0.0, pose, pose, *render_frame(pose, None)), red_segmenter, Settings()
    )
    assert empty.detection is None and empty.target_pixels == 0


def test_process_frame_raises_protocol_errors():
    with pytest.raises(protocol.MissingFieldError):
        process_frame({"timestamp": "1"}, red_segmenter, Settings())


def test_max_image_side_is_the_configured_one():
    pose = Pose(0.0, 0.0, 10.0, 0.0, 45.0, 10.0)
    message = protocol.build_sensor_frame(0.0, pose, pose, *render_frame(pose, None))  # 256x256
    assert process_frame(message, red_segmenter, Settings(max_image_side=256)).detection is None
    with pytest.raises(protocol.ImageTooLargeError, match="more than 255 a side"):
        process_frame(message, red_segmenter, Settings(max_image_side=255))
    _, config = parse_args(["model", "--max-image-side", "300"], environ={})
    assert Settings.from_config(config).max_image_side == 300
