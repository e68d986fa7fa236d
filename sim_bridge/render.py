"""The flight world (`sim_bridge.world`) as the simulator's gimbal camera sees it: colour, depth and the truth.

The camera is the pinhole of `sim_bridge.geometry` (by default fx = fy = 256, cx = cy = 128 for 256x256 frames).
A frame is built back to front with a depth test:

1. the **background**: the part of the world's panorama that the camera's yaw faces (`World.background_view`);
2. the **ground**: depth only, the z-depth at which each pixel's ray meets the plane z = 0 (none above the
   horizon: infinite, sent as code 255, "no reading", as the simulator's 50 m range does);
3. **panels**: each pixel's ray cast against them, the texture drawn where a panel is nearer;
4. **people**, far to near: each person's cut-out scaled to 1.8 m at its body centre's z-depth ``d``
   (``1.8 fy / d`` pixels tall, its width in proportion), its bottom centre at the projected foot point, blended
   by its alpha where it is nearer than what is drawn; the depth there becomes ``d`` (a billboard facing the
   camera) and the class the person's, where the alpha exceeds one half.

The truth (`sim_bridge.flight.Truth`): ``mask`` the class of every pixel (0 background, 1 other people, 2 the
hero), ``visible`` whether any pixel shows the hero, and ``position`` the centroid of the hero's visible pixels
back-projected at its depth ``d`` (the centre of what can be seen of it: a perfect segmenter locates it there to
within the depth image's 0.2 m steps), or its body's centre when it is out of sight.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from sim_bridge.flight import Truth
from sim_bridge.geometry import Intrinsics, Pose, pixel_to_world, project, world_to_camera
from sim_bridge.synth import IMAGE_SIZE, TARGET, pixel_rays
from sim_bridge.world import PERSON_HEIGHT_M, Person, World

NEAR_M = 0.5  # people nearer the camera than this are not drawn
MIN_HEIGHT_PX = 1.0  # people smaller than this are not drawn
ALPHA_SOLID = 0.5


@dataclass(frozen=True)
class View:
    """One rendered frame: RGB (H, W, 3) uint8, z-depth (H, W) float32 metres (inf: no reading), the truth, and
    the hero's z-depth (None when it is behind the camera)."""

    rgb: np.ndarray
    depth_m: np.ndarray
    truth: Truth
    hero_depth_m: float | None


@functools.lru_cache(maxsize=4)
def camera_rays(intrinsics: Intrinsics, size: int) -> np.ndarray:
    """`sim_bridge.synth.pixel_rays`, computed once per camera (read-only)."""
    rays = pixel_rays(intrinsics, size)
    rays.setflags(write=False)
    return rays


def render(world: World, t: float, camera: Pose, intrinsics: Intrinsics | None = None, size: int = IMAGE_SIZE) -> View:
    """The frame a camera at ``camera`` sees of ``world`` at time ``t`` (s)."""
    intrinsics = intrinsics or Intrinsics.default(size)
    rays = camera.rotation @ camera_rays(intrinsics, size)  # world directions, the ray parameter is the z-depth
    origin = camera.position
    colours = world.background_view(camera.yaw, size).astype(np.float32).reshape(-1, 3)
    depth = np.full(rays.shape[1], np.inf)
    down = rays[2] < -1e-9
    depth[down] = -origin[2] / rays[2, down]
    for panel in world.panels:
        hit, a, b = panel.intersect(origin, rays)
        nearer = hit < depth
        depth[nearer] = hit[nearer]
        colours[nearer] = panel.colours(a[nearer], b[nearer])
    rgb, depth = colours.reshape(size, size, 3), depth.reshape(size, size).astype(np.float32)
    classes = np.zeros((size, size), np.uint8)
    placed = [(d, person) for person in world.people if (d := person_depth(person, t, camera)) is not None]
    for d, person in sorted(placed, key=lambda item: -item[0]):
        draw_person(rgb, depth, classes, person, t, d, camera, intrinsics)
    hero_depth = person_depth(world.hero, t, camera)
    truth = hero_truth(classes, world.hero.centre(t), hero_depth, camera, intrinsics)
    return View(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), depth, truth, hero_depth)


def person_depth(person: Person, t: float, camera: Pose) -> float | None:
    """The z-depth (m) of a person's body centre, or None when it is nearer than `NEAR_M` or behind the camera."""
    d = float(world_to_camera(person.centre(t), camera)[0])
    return d if d > NEAR_M else None


def billboard_box(
    person: Person, t: float, d: float, camera: Pose, intrinsics: Intrinsics
) -> tuple[int, int, int, int]:
    """(left, top, width, height) in pixels of a person's cut-out at z-depth ``d``: 1.8 m tall, its bottom centre
    at the projected foot point; width 0 when it cannot be drawn."""
    pixel_height = PERSON_HEIGHT_M * intrinsics.fy / d
    feet = world_to_camera(person.feet(t), camera)
    if pixel_height < MIN_HEIGHT_PX or feet[0] <= 0:
        return 0, 0, 0, 0
    u, v, _ = project(feet, intrinsics)
    height, width = person.cutout.alpha.shape
    pixel_width = max(1, round(pixel_height * width / height))
    return round(u - pixel_width / 2), round(v - pixel_height), pixel_width, max(1, round(pixel_height))


def draw_person(
    rgb: np.ndarray,
    depth: np.ndarray,
    classes: np.ndarray,
    person: Person,
    t: float,
    d: float,
    camera: Pose,
    intrinsics: Intrinsics,
) -> None:
    """Draw a person's billboard at z-depth ``d`` into the frame's arrays, in place, behind nearer things."""
    left, top, width, height = billboard_box(person, t, d, camera, intrinsics)
    size_v, size_u = classes.shape
    rows, cols = slice(max(top, 0), min(top + height, size_v)), slice(max(left, 0), min(left + width, size_u))
    if not width or rows.start >= rows.stop or cols.start >= cols.stop:
        return
    shrinking = height < person.cutout.alpha.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    inside = slice(rows.start - top, rows.stop - top), slice(cols.start - left, cols.stop - left)
    pixels = cv2.resize(person.cutout.pixels, (width, height), interpolation=interpolation)[inside]
    alpha = cv2.resize(person.cutout.alpha, (width, height), interpolation=interpolation)[inside]
    alpha = np.where(d < depth[rows, cols], alpha, 0.0)[..., None]
    rgb[rows, cols] = alpha * pixels + (1 - alpha) * rgb[rows, cols]
    solid = alpha[..., 0] > ALPHA_SOLID
    depth[rows, cols][solid] = d
    classes[rows, cols][solid] = person.label


def hero_truth(
    classes: np.ndarray, centre: np.ndarray, hero_depth: float | None, camera: Pose, intrinsics: Intrinsics
) -> Truth:
    """The frame's truth: the hero's visible pixels' centroid back-projected at its depth, or its body centre."""
    rows, cols = np.nonzero(classes == TARGET)
    if not len(rows) or hero_depth is None:
        return Truth(position=np.asarray(centre, np.float64), visible=False, mask=classes)
    position = pixel_to_world((float(cols.mean()), float(rows.mean())), hero_depth, intrinsics, camera)
    return Truth(position=position, visible=True, mask=classes)
