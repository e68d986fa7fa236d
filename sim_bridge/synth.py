"""``python -m sim_bridge.synth OUT --frames N [--seed S] [tracker options]``: a synthetic flight whose truth is known.

The scene: a textured ground plane (z = 0), people walking on it, each an upright ellipsoid (0.6 m wide,
1.8 m tall) in one clothing colour, the target in red. The drone flies at 8 m: it patrols (its camera
sweeping towards the target, which comes into view during the patrol's last quarter), follows the target from
8 m behind it for the middle part of the flight, then turns away from it (patrol again). Every pixel's ray is cast
against the ground and the people, the nearest hit wins, so occlusion and depth are exact; the camera is the
pinhole of `sim_bridge.geometry` with the default intrinsics (fx = fy = 256, cx = cy = 128).

Frames are written as the simulator sends them (`sim_bridge.protocol.build_sensor_frame`: N4 poses, 256x256
JPEG, depth PNG with ``R = depth * 255 / 50``), rendered from the poses as the N4 strings round them, 5 per
second, with per-frame truth (`sim_bridge.flight.Truth`): ``mask`` the class of every pixel (0 ground or sky,
1 other people, 2 target); ``visible`` whether any pixel shows the target; ``position`` the centroid of the
target's visible surface (the mean of the world points its pixels' rays hit, so back-projecting the mask's
centroid at the mask's mean depth lands on it to within about a centimetre) and, when it is out of sight, the
centre of its body. The same seed gives the same file, byte for byte.

Options for the tracker's tests: ``--target-speed`` (m/s; 0: the target stands still), ``--wobble M`` (the
drone's position jitters by that standard deviation on each axis, frame to frame, as a hovering drone does in
wind, its camera still aimed at the target), ``--hide FRAMES`` (the target is not drawn in those frames, an
occlusion: its truth is not visible) and ``--distractor FRAMES`` (a person dressed like the target stands 3 m
nearer the camera and 2 m to its left in those frames, so it looks bigger; it is not the target, so the truth
mask calls it another person). FRAMES are indices and ranges, ``40,52-53``.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from sim_bridge.flight import FlightWriter, Truth
from sim_bridge.geometry import Intrinsics, Pose, back_project
from sim_bridge.protocol import build_sensor_frame
from sim_bridge.summary import format_ranges

IMAGE_SIZE = 256
FPS = 5.0
START_EPOCH_S = 1_700_000_000.0
PERSON_RADIUS_M = 0.3
PERSON_HALF_HEIGHT_M = 0.9
OTHER_PEOPLE = 6
TARGET_SPEED_M_S = 1.2
DISTRACTOR_OFFSET_M = (-3.0, 2.0)  # from the target: forward (along the camera's heading) and to its left
TARGET_RGB = (205, 28, 28)
CLOTHES_RGB = ((40, 80, 200), (40, 150, 60), (215, 195, 60), (120, 120, 130), (225, 225, 225), (95, 65, 40))
GROUND_RGB = (112, 124, 96)
SKY_RGB = (170, 200, 235)
LIGHT = np.array([0.3, 0.2, 0.93]) / np.linalg.norm([0.3, 0.2, 0.93])
AMBIENT = 0.35
ALTITUDE_M = 8.0
FOLLOW_DISTANCE_M = 8.0
PATROL_SPEED_M_S = 3.0
PATROL_SWEEP_DEG = 120.0
TURN_AWAY_DEG_PER_FRAME = 25.0
GIMBAL_OFFSET_M = (0.0052, 0.0052, -0.1057)
BACKGROUND, OTHER, TARGET = 0, 1, 2


@dataclass(frozen=True)
class Walker:
    """A person's path: body centres (frames, 3), the walking heading (frames,) in radians, the clothes' colour
    and the class the truth mask gives the person (`TARGET` or `OTHER`)."""

    centres: np.ndarray
    headings: np.ndarray
    rgb: tuple[int, int, int]
    label: int = OTHER


@dataclass(frozen=True)
class Rendered:
    """One rendered view: RGB (H, W, 3) uint8, z-depth (H, W) metres (inf: sky), classes (H, W) uint8,
    and the world point each pixel's ray hits (H, W, 3)."""

    rgb: np.ndarray
    depth_m: np.ndarray
    classes: np.ndarray
    points: np.ndarray


def walk(
    rng: np.random.Generator,
    frames: int,
    start: np.ndarray,
    speed: float,
    rgb: tuple[int, int, int],
    label: int = OTHER,
) -> Walker:
    """A walk from ``start`` (x, y) at ``speed`` m/s with a slowly wandering heading."""
    t = np.arange(frames) / FPS
    heading0, phase = rng.uniform(0, 2 * np.pi, size=2)
    headings = heading0 + 0.5 * np.sin(0.25 * t + phase)
    steps = np.stack([np.cos(headings), np.sin(headings)], axis=1) * speed / FPS
    xy = start + np.concatenate([np.zeros((1, 2)), np.cumsum(steps[:-1], axis=0)])
    centres = np.column_stack([xy, np.full(frames, PERSON_HALF_HEIGHT_M)])
    return Walker(centres, headings, rgb, label)


def make_people(rng: np.random.Generator, frames: int, target_speed: float = TARGET_SPEED_M_S) -> list[Walker]:
    """The target (first, in red) and the others, scattered along the target's path so they meet it."""
    target = walk(rng, frames, np.zeros(2), target_speed, TARGET_RGB, TARGET)
    people = [target]
    for i in range(OTHER_PEOPLE):
        near = target.centres[rng.integers(0, frames), :2] + rng.uniform(-6.0, 6.0, size=2)
        people.append(walk(rng, frames, near, rng.uniform(0.5, 1.5), CLOTHES_RGB[i % len(CLOTHES_RGB)]))
    return people


def drone_poses(target: Walker, wobble: np.ndarray | None = None) -> list[tuple[Pose, Pose]]:
    """(body pose, gimbal pose) per frame, rounded as N4 strings round them: patrol, follow, turn away; the drone
    displaced by ``wobble`` (frames, 3) metres from its path when given, the camera still aimed at the target."""
    frames = len(target.centres)
    follow_start, follow_end = follow_span(frames)
    poses = []
    for i in range(frames):
        aim = target.centres[min(max(i, follow_start), follow_end - 1)]
        heading = target.headings[min(max(i, follow_start), follow_end - 1)]
        behind = aim[:2] - FOLLOW_DISTANCE_M * np.array([np.cos(heading), np.sin(heading)])
        offset_deg = 0.0
        if i < follow_start:
            side = np.array([-np.sin(heading), np.cos(heading)])
            behind = behind + side * PATROL_SPEED_M_S * (follow_start - i) / FPS
            offset_deg = PATROL_SWEEP_DEG * (follow_start - i) / follow_start
        elif i >= follow_end:
            offset_deg = -min(TURN_AWAY_DEG_PER_FRAME * (i - follow_end + 1), 180.0)
        position = np.array([*behind, ALTITUDE_M]) + (0.0 if wobble is None else wobble[i])
        to_target = target.centres[i] - position
        yaw = math.degrees(math.atan2(to_target[1], to_target[0])) + offset_deg
        pitch = math.degrees(math.atan2(-to_target[2], math.hypot(to_target[0], to_target[1])))
        body = Pose(*np.round([*position, 0.0, 0.0, yaw], 4))
        gimbal = Pose(*np.round([*(position + GIMBAL_OFFSET_M), 0.0, pitch, yaw], 4))
        poses.append((body, gimbal))
    return poses


def follow_span(frames: int) -> tuple[int, int]:
    """The frames [start, end) in which the drone follows the target, in a flight of ``frames``."""
    return round(0.35 * frames), round(0.75 * frames)


def distractor(target: Walker, gimbal_poses: Sequence[Pose]) -> Walker:
    """A person dressed like the target, `DISTRACTOR_OFFSET_M` from it along and across the camera's heading."""
    yaws = np.radians([pose.yaw for pose in gimbal_poses])
    forward = np.column_stack([np.cos(yaws), np.sin(yaws), np.zeros_like(yaws)])
    left = np.column_stack([-np.sin(yaws), np.cos(yaws), np.zeros_like(yaws)])
    ahead, aside = DISTRACTOR_OFFSET_M
    return Walker(target.centres + ahead * forward + aside * left, target.headings, TARGET_RGB, OTHER)


def pixel_rays(intrinsics: Intrinsics, size: int = IMAGE_SIZE) -> np.ndarray:
    """Camera-frame rays (3, H*W) through every pixel centre, scaled to unit z-depth (x = 1)."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    return back_project((u, v), np.ones_like(u), intrinsics).reshape(3, -1)


def ground_rgb(points: np.ndarray, seed: int) -> np.ndarray:
    """The ground's colour (N, 3) at world points (N, 3): 2 m tiles with a per-tile shade and fine ripples."""
    ix, iy = np.floor(points[:, 0] / 2.0).astype(np.int64), np.floor(points[:, 1] / 2.0).astype(np.int64)
    tile = ((ix * 73856093) ^ (iy * 19349663) ^ (seed * 83492791)) % 101 / 101.0 - 0.5
    ripple = np.sin(3.1 * points[:, 0]) * np.sin(2.3 * points[:, 1])
    shade = 1.0 + 0.25 * tile + 0.08 * ripple + 0.06 * ((ix + iy) % 2)
    return np.asarray(GROUND_RGB) * shade[:, None]


def render(camera: Pose, people: Sequence[Walker], frame: int, rays_cam: np.ndarray, seed: int) -> Rendered:
    """Cast every pixel's ray against the ground and the people at ``frame``; the nearest hit wins."""
    size = int(math.isqrt(rays_cam.shape[1]))
    origin = camera.position
    rays = camera.rotation @ rays_cam  # world directions, scaled so that the ray parameter is the z-depth
    depth = np.full(rays.shape[1], np.inf)
    classes = np.zeros(rays.shape[1], np.uint8)
    rgb = np.tile(np.asarray(SKY_RGB, np.float64), (rays.shape[1], 1))
    down = rays[2] < -1e-9
    depth[down] = -origin[2] / rays[2, down]
    points = origin[:, None] + rays * np.where(np.isfinite(depth), depth, 0.0)
    rgb[down] = ground_rgb(points[:, down].T, seed)
    scale = np.array([PERSON_RADIUS_M, PERSON_RADIUS_M, PERSON_HALF_HEIGHT_M])
    for person in people:
        centre = person.centres[frame]
        o = (origin - centre) / scale
        d = rays / scale[:, None]
        a, b, c = np.einsum("ij,ij->j", d, d), 2.0 * (d.T @ o), o @ o - 1.0
        disc = b * b - 4 * a * c
        hit = disc > 0
        t = np.full_like(depth, np.inf)
        t[hit] = (-b[hit] - np.sqrt(disc[hit])) / (2 * a[hit])
        nearer = (t > 0) & (t < depth)
        if not nearer.any():
            continue
        depth[nearer] = t[nearer]
        classes[nearer] = person.label
        surface = origin[:, None] + rays[:, nearer] * t[nearer]
        points[:, nearer] = surface
        normals = (surface - centre[:, None]) / (scale**2)[:, None]
        normals /= np.linalg.norm(normals, axis=0)
        light = AMBIENT + (1 - AMBIENT) * np.clip(LIGHT @ normals, 0.0, 1.0)
        rgb[nearer] = np.asarray(person.rgb) * light[:, None]
    return Rendered(
        rgb=np.clip(np.rint(rgb), 0, 255).astype(np.uint8).reshape(size, size, 3),
        depth_m=depth.reshape(size, size),
        classes=classes.reshape(size, size),
        points=points.T.reshape(size, size, 3),
    )


def truth_of(view: Rendered, target_centre: np.ndarray) -> Truth:
    """The frame's truth: the centroid of the target's visible surface, or its body centre when unseen."""
    visible = view.classes == TARGET
    position = view.points[visible].mean(axis=0) if visible.any() else np.asarray(target_centre, np.float64)
    return Truth(position=position, visible=bool(visible.any()), mask=view.classes)


def synthesize(
    path: str | os.PathLike,
    frames: int,
    seed: int = 0,
    target_speed: float = TARGET_SPEED_M_S,
    wobble: float = 0.0,
    hidden: Collection[int] = (),
    distractors: Collection[int] = (),
) -> None:
    """Write a synthetic flight of ``frames`` frames to ``path`` (gzip when it ends in ``.gz``), the target
    walking at ``target_speed`` m/s, the drone's position jittering by ``wobble`` m (standard deviation), the
    target not drawn in the ``hidden`` frames, and a `distractor` in the ``distractors`` frames."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1. Received: frames={frames}")
    for name, value in (("target_speed", target_speed), ("wobble", wobble)):
        if not value >= 0:
            raise ValueError(f"{name} must be non-negative. Received: {name}={value}")
    rng = np.random.default_rng(seed)
    people = make_people(rng, frames, target_speed)
    offsets = np.random.default_rng([seed, 1]).normal(0.0, wobble, (frames, 3)) if wobble else None
    poses = drone_poses(people[0], offsets)
    double = distractor(people[0], [gimbal for _, gimbal in poses])
    intrinsics = Intrinsics.default(IMAGE_SIZE)
    rays_cam = pixel_rays(intrinsics)
    created = datetime.datetime.fromtimestamp(START_EPOCH_S, datetime.timezone.utc)
    source = f"sim_bridge.synth frames={frames} seed={seed}"
    if target_speed != TARGET_SPEED_M_S:
        source += f" target_speed={target_speed:g}"
    if wobble:
        source += f" wobble={wobble:g}"
    for name, chosen in (("hide", hidden), ("distractor", distractors)):
        if chosen:
            source += f" {name}={format_ranges(sorted(chosen))}"
    with FlightWriter(path, source, intrinsics, created=created) as writer:
        for i, (body, gimbal) in enumerate(poses):
            shown = people[1:] if i in hidden else people
            view = render(gimbal, [*shown, double] if i in distractors else shown, i, rays_cam, seed)
            t = START_EPOCH_S + i / FPS
            data = build_sensor_frame(t, body, gimbal, view.rgb, view.depth_m)
            writer.write_frame(t, data, truth_of(view, people[0].centres[i]))


def parse_ranges(text: str) -> set[int]:
    """Frame indices from ``40,52-53`` (the inverse of `sim_bridge.summary.format_ranges`); raises ValueError.

    >>> sorted(parse_ranges("3,7-9"))
    [3, 7, 8, 9]
    """
    frames: set[int] = set()
    for part in filter(None, (part.strip() for part in text.split(","))):
        first, _, last = part.partition("-")
        try:
            start, stop = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"frames must look like 40,52-53. Received: {text!r}") from None
        if start < 0 or stop < start:
            raise ValueError(f"frame ranges must be non-negative and increasing. Received: {part!r}")
        frames.update(range(start, stop + 1))
    return frames


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sim_bridge.synth", description=__doc__.split("\n\n")[1])
    parser.add_argument("out", help="flight file to create, e.g. synth.flight.jsonl.gz (must not exist)")
    parser.add_argument("--frames", type=int, required=True, help="number of frames (5 per second)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the scene (default: 0)")
    parser.add_argument(
        "--target-speed", type=float, default=TARGET_SPEED_M_S, help=f"m/s (default: {TARGET_SPEED_M_S})"
    )
    parser.add_argument("--wobble", type=float, default=0.0, help="the drone's position jitter, m (default: 0)")
    parser.add_argument("--hide", type=parse_ranges, default=set(), help="frames without the target, e.g. 40,52-53")
    parser.add_argument(
        "--distractor", type=parse_ranges, default=set(), help="frames with a person dressed like the target"
    )
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error(f"--frames must be at least 1. Received: --frames={args.frames}")
    for flag, value in (("--target-speed", args.target_speed), ("--wobble", args.wobble)):
        if not value >= 0:
            parser.error(f"{flag} must be non-negative. Received: {flag}={value}")
    try:
        synthesize(args.out, args.frames, args.seed, args.target_speed, args.wobble, args.hide, args.distractor)
    except OSError as error:
        print(f"error: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"wrote {args.frames} frames to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
