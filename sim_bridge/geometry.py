"""Camera and pose geometry of the quad simulator, with its conventions stated once.

Conventions (all functions in this module follow them):

- Frames are ROS frames: x forward, y left, z up, right-handed, metres. The camera frame is the gimbal's
  frame: x along the optical axis, y to the image's left, z to the image's top.
- A pose is ``x, y, z, roll, pitch, yaw``: the frame's origin in the world, then its orientation as angles in
  **degrees** (the simulator's wire unit), static x-y-z axes, ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``, and
  ``world = R @ p + t`` for a point ``p`` in the frame. Angles below -180 (which the simulator sends) need no
  wrapping: the rotation is periodic.
- Pixels are ``(u, v)``: u the column, v the row, ``(0, 0)`` the centre of the top-left pixel. Intrinsics
  are those of a pinhole with focal lengths ``fx``, ``fy`` and principal point ``cx``, ``cy`` in pixels; by
  default ``fx = fy = W`` and ``cx = cy = W / 2`` (the original follower's assumption, W the image width).
- Depth is z-depth along the optical axis (the camera x axis), not the length of the ray. A pixel at depth
  ``d`` back-projects to ``(d, -(u - cx) d / fx, -(v - cy) d / fy)`` in the camera frame: a column right of
  the centre is to the camera's right (negative y), a row below it is below the camera (negative z).
- Depth images encode metres in their red channel: ``depth_m = R * 50 / 255``, computed in floating point;
  0 means no reading and 255 means at or beyond the 50 m range.

>>> import numpy as np
>>> pose = Pose(0.0, 0.0, 10.0, 0.0, 90.0, 0.0)  # 10 m up, looking straight down
>>> np.round(pixel_to_world((128.0, 128.0), 10.0, Intrinsics.default(256), pose), 6).tolist()
[0.0, 0.0, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

DEPTH_RANGE_M = 50.0
DEPTH_CODE_MAX = 255


class Pose(NamedTuple):
    """A frame's position (metres) and orientation (degrees), in the order the simulator sends them."""

    x: float
    y: float
    z: float
    roll: float
    pitch: float
    yaw: float

    @property
    def position(self) -> np.ndarray:
        """The translation ``t`` as a float64 array of shape (3,)."""
        return np.array([self.x, self.y, self.z], dtype=np.float64)

    @property
    def rotation(self) -> np.ndarray:
        """The rotation ``R`` (3, 3) from this frame to the world."""
        return euler_deg_to_matrix(self.roll, self.pitch, self.yaw)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def default(cls, width: int) -> Intrinsics:
        """The original follower's assumption for a ``width``-pixel image: fx = fy = W, cx = cy = W / 2."""
        return cls(float(width), float(width), width / 2.0, width / 2.0)


def euler_deg_to_matrix(roll_deg: float, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """Rotation matrix (3, 3) ``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` from angles in degrees."""
    roll, pitch, yaw = np.radians([roll_deg, pitch_deg, yaw_deg])
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    return rz @ ry @ rx


def back_project(pixel: tuple[float, float], depth_m: float, intrinsics: Intrinsics) -> np.ndarray:
    """The camera-frame point (3,) seen at ``pixel`` (u, v) at z-depth ``depth_m``."""
    u, v = pixel
    k = intrinsics
    return np.array([depth_m, -(u - k.cx) * depth_m / k.fx, -(v - k.cy) * depth_m / k.fy])


def project(point_cam: np.ndarray, intrinsics: Intrinsics) -> tuple[float, float, float]:
    """The pixel (u, v) and z-depth of a camera-frame point: the inverse of `back_project`.

    Raises ValueError for a point not in front of the camera (x <= 0).
    """
    x, y, z = (float(c) for c in point_cam)
    if x <= 0.0:
        raise ValueError(f"point_cam must be in front of the camera (x > 0). Received: point_cam={point_cam}")
    k = intrinsics
    return k.cx - y * k.fx / x, k.cy - z * k.fy / x, x


def camera_to_world(point_cam: np.ndarray, pose: Pose) -> np.ndarray:
    """``R @ p + t``: a point in the frame of ``pose`` expressed in the world."""
    return pose.rotation @ np.asarray(point_cam, dtype=np.float64) + pose.position


def world_to_camera(point_world: np.ndarray, pose: Pose) -> np.ndarray:
    """``R.T @ (p - t)``: a world point expressed in the frame of ``pose``."""
    return pose.rotation.T @ (np.asarray(point_world, dtype=np.float64) - pose.position)


def pixel_to_world(pixel: tuple[float, float], depth_m: float, intrinsics: Intrinsics, camera_pose: Pose) -> np.ndarray:
    """The world point (3,) seen at ``pixel`` and z-depth ``depth_m`` by a camera at ``camera_pose``."""
    return camera_to_world(back_project(pixel, depth_m, intrinsics), camera_pose)


def world_to_pixel(point_world: np.ndarray, intrinsics: Intrinsics, camera_pose: Pose) -> tuple[float, float, float]:
    """The pixel (u, v) and z-depth at which a camera at ``camera_pose`` sees a world point."""
    return project(world_to_camera(point_world, camera_pose), intrinsics)


def scale_pixel(
    pixel: tuple[float, float], from_size: tuple[int, int], to_size: tuple[int, int]
) -> tuple[float, float]:
    """Map a pixel (u, v) between two resolutions ``(width, height)`` of the same image, centre-aligned."""
    (u, v), (w0, h0), (w1, h1) = pixel, from_size, to_size
    return (u + 0.5) * w1 / w0 - 0.5, (v + 0.5) * h1 / h0 - 0.5


def decode_depth(red: np.ndarray) -> np.ndarray:
    """Metres (float32, same shape) from depth codes (uint8 red channel); NaN where 0 or 255 (no reading)."""
    codes = np.asarray(red)
    depth = codes.astype(np.float32) * np.float32(DEPTH_RANGE_M / DEPTH_CODE_MAX)
    depth[(codes == 0) | (codes == DEPTH_CODE_MAX)] = np.nan
    return depth


def encode_depth(depth_m: np.ndarray) -> np.ndarray:
    """Depth codes (uint8) for metres, as the simulator writes them: rounded, clipped to 0..255."""
    codes = np.rint(np.asarray(depth_m, dtype=np.float64) * DEPTH_CODE_MAX / DEPTH_RANGE_M)
    return np.clip(np.nan_to_num(codes, nan=0.0), 0, DEPTH_CODE_MAX).astype(np.uint8)
