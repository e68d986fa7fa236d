"""The flight world: a flat ground, people walking on it, panels that hide them, and the simulator's patrol path.

Conventions are those of `sim_bridge.geometry`: world metres in ROS axes (x forward, y left, z up), the ground at
z = 0, angles on the wire in degrees.

- **People** (`Person`): the hero first, then the bystanders. Each walks a `sim_bridge.walkers.Walk` and is drawn
  from a cut-out of a `sim_bridge.cutouts.Library` (the hero's from the hero class, the bystanders' from the
  "other people" class). A person's transform is at its feet, as a Unity character's is; its body centre is
  `PERSON_HEIGHT_M` / 2 above them.
- **Panels** (`Panel`): textured rectangles that hide what lies behind them and block the simulator's line of
  sight: upright **walls** away from the people's paths, and **canopies**, panels laid flat at `CANOPY_HEIGHT_M`
  over the hero's path. The simulator's drone follows 2 m behind the hero and 3 m up, looking down at it: a wall
  can come between them only if the drone flies through it, a canopy (a bridge, an awning) hides the hero from
  above while the drone flies over it.
- **Patrol**: the square `PATROL_WAYPOINTS` at `PATROL_ALTITUDE_M`; the drone starts at the first waypoint.
- **Background**: a panorama of the library's backgrounds side by side, one image per horizontal field of view
  of the camera, cross-faded; the camera sees the part that its yaw faces (`background_view`).

`build_world` makes a world from a `Scene` (what the world holds) and a seed: the same seed, scene and library give
the same world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim_bridge.cutouts import Cutout, Library
from sim_bridge.geometry import Pose
from sim_bridge.synth import OTHER, TARGET
from sim_bridge.walkers import SPEED_RANGE_M_S, Walk, crossing_walk, random_walk

PERSON_HEIGHT_M = 1.8
TICK_S = 0.02  # the world's time step (Unity's fixed step): paths are sampled at it, the drone moves by it
PATROL_ALTITUDE_M = 10.0
PATROL_WAYPOINTS = ((-20.0, -20.0), (20.0, -20.0), (20.0, 20.0), (-20.0, 20.0))
HERO_BEARING_SPREAD_DEG = 30.0  # the hero starts within this of the bearing from the drone to the arena's centre
BYSTANDER_SPREAD_M = 6.0  # bystanders start this far at most from a point of the hero's path, so they meet it
CANOPY_HEIGHT_M = 2.3
CANOPY_WIDTH_M = 3.0
# Seen from the simulator's follow point (2 m behind, 3 m up), the hero is hidden whole while a stretch from about
# 2 m to 1 m behind it is under the canopy: a canopy this much longer than the hero's walk hides it for that walk's
# time (within a frame, whatever the hero's speed: measured on followed flights at 0.7 to 1.5 m/s).
CANOPY_MARGIN_M = 1.4
SWEEP_LEAD_DEG = 40.0  # a drone facing the hero starts with it this far to its left: the 360° sweep brings it in
CROSSING_BEHIND_M = 0.8  # a crossing bystander passes this far behind the hero: between it and its follower
CROSSING_SPEED_M_S = (1.0, 1.5)
WALL_LENGTH_M = (6.0, 10.0)
WALL_HEIGHT_M = (3.0, 5.0)
WALL_CLEARANCE_M = (3.0, 1.0)  # from the hero's path (the follower flies within 2 m of it), from the others'
EVENTS_SPAN = (0.35, 0.85)  # occlusions and crossings happen within this part of the flight
PLACEMENT_TRIES = 50
FADE_PX = 32


@dataclass(frozen=True)
class Scene:
    """What a world holds: its length (s), the bystanders walking about, the hero's distance from the drone's start
    and whether the drone starts facing it (the hero `SWEEP_LEAD_DEG` to its left, so that the first 360° sweep
    brings it into view at once) or facing away, the occlusions of the hero by canopies (their lengths in seconds
    of the hero's walk), the bystanders crossing in front of the hero, and the walls."""

    duration_s: float = 40.0
    bystanders: int = 4
    hero_distance_m: float = 15.0
    facing_hero: bool = True
    occlusions_s: tuple[float, ...] = ()
    crossings: int = 0
    walls: int = 2


@dataclass(frozen=True)
class Person:
    """Someone walking: the path, the cut-out drawn, and the truth class (`TARGET` for the hero, else `OTHER`)."""

    walk: Walk
    cutout: Cutout
    label: int

    def feet(self, t: float) -> np.ndarray:
        """The feet (3,) at time ``t``: the transform Unity gives a character."""
        return np.array([*self.walk.position(t), 0.0])

    def centre(self, t: float) -> np.ndarray:
        """The body's centre (3,), half the height above the feet."""
        return np.array([*self.walk.position(t), PERSON_HEIGHT_M / 2])

    def forward(self, t: float) -> np.ndarray:
        """The unit direction (3,) the person faces, horizontal."""
        heading = self.walk.heading(t)
        return np.array([math.cos(heading), math.sin(heading), 0.0])


@dataclass(frozen=True)
class Panel:
    """The textured rectangle ``corner + a u + b v``, a and b in [0, 1]; the texture's (H, W, 3) uint8 columns
    run along ``u`` and its rows against ``v`` (row 0 at b = 1)."""

    corner: np.ndarray
    u: np.ndarray
    v: np.ndarray
    texture: np.ndarray = field(repr=False)

    def intersect(self, origin: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t, a, b) where the rays ``origin + t directions`` (directions (3, N)) meet the panel: t is inf where a ray
        misses it or meets it behind the origin."""
        normal = np.cross(self.u, self.v)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (normal @ (self.corner - origin)) / (normal @ directions)
            offsets = origin[:, None] + directions * t - self.corner[:, None]
        a, b = (self.u @ offsets) / (self.u @ self.u), (self.v @ offsets) / (self.v @ self.v)
        inside = np.isfinite(t) & (t > 0) & (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1)
        return np.where(inside, t, np.inf), a, b

    def colours(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The texture's colours (N, 3) at panel coordinates ``a``, ``b`` in [0, 1] (nearest texel)."""
        height, width = self.texture.shape[:2]
        rows = np.clip(np.rint((1 - b) * (height - 1)), 0, height - 1).astype(np.intp)
        cols = np.clip(np.rint(a * (width - 1)), 0, width - 1).astype(np.intp)
        return self.texture[rows, cols]

    def blocks(self, start: np.ndarray, end: np.ndarray) -> bool:
        """Whether the segment from ``start`` to ``end`` (3,) passes through the panel."""
        t, _, _ = self.intersect(np.asarray(start, np.float64), (np.asarray(end) - start)[:, None])
        return bool(t[0] < 1.0)


@dataclass(frozen=True)
class World:
    """People (the hero first), panels, the background panorama (H, W, 3) uint8 covering 360°, the patrol
    waypoints (k, 3), the drone body's pose at time 0, the length (s) and where the cut-outs came from."""

    people: tuple[Person, ...]
    panels: tuple[Panel, ...]
    panorama: np.ndarray = field(repr=False)
    waypoints: np.ndarray
    start: Pose
    duration_s: float
    source: str

    @property
    def hero(self) -> Person:
        """The person to follow."""
        return self.people[0]

    def sight_blocked(self, start: np.ndarray, end: np.ndarray) -> bool:
        """Whether a panel lies on the segment from ``start`` to ``end``: Unity's ``Physics.Linecast``. People do
        not block it (their colliders are thin, and the simulator's own check ends inside the hero)."""
        return any(panel.blocks(start, end) for panel in self.panels)

    def background_view(self, yaw_deg: float, size: int) -> np.ndarray:
        """The part of the panorama a camera yawed ``yaw_deg`` sees, (size, size, 3) uint8: turning left (yaw up)
        moves the scene right in the image."""
        width = self.panorama.shape[1]
        centre = round(-yaw_deg / 360.0 * width)
        return self.panorama[:, (centre - size // 2 + np.arange(size)) % width]


def horizontal_fov_deg(size: int) -> float:
    """The default camera's field of view (degrees) across ``size`` pixels: 2 atan(cx / fx), fx = size."""
    return math.degrees(2 * math.atan(0.5 * size / size))


def panorama(rng: np.random.Generator, backgrounds: tuple[np.ndarray, ...]) -> np.ndarray:
    """Backgrounds drawn from ``backgrounds`` (flipped at random), side by side and cross-faded over `FADE_PX`, scaled
    so that one background spans the camera's horizontal field of view."""
    size = backgrounds[0].shape[1]
    count = math.ceil(360.0 / horizontal_fov_deg(size)) + 1
    images = [backgrounds[i] for i in rng.integers(0, len(backgrounds), count)]
    images = [image[:, ::-1] if flip else image for image, flip in zip(images, rng.random(count) < 0.5)]
    ramp = np.linspace(0.0, 1.0, FADE_PX)[None, :, None]
    strip = images[0].astype(np.float32)
    for image in images[1:]:
        image = image.astype(np.float32)
        fade = strip[:, -FADE_PX:] * (1 - ramp) + image[:, :FADE_PX] * ramp
        strip = np.concatenate([strip[:, :-FADE_PX], fade, image[:, FADE_PX:]], axis=1)
    width = round(size * 360.0 / horizontal_fov_deg(size))
    strip = strip[:, : width + FADE_PX]
    strip[:, :FADE_PX] = strip[:, width : width + FADE_PX] * (1 - ramp) + strip[:, :FADE_PX] * ramp  # close the ring
    return np.clip(np.rint(strip[:, :width]), 0, 255).astype(np.uint8)


def canopy_over(hero: Walk, start_s: float, length_s: float, texture: np.ndarray) -> Panel:
    """A canopy over the hero's path from where it is at ``start_s`` to `CANOPY_MARGIN_M` past where it is
    ``length_s`` later: it hides the hero from its follower for about ``length_s``."""
    a, b = hero.position(start_s), hero.position(start_s + length_s)
    along = b - a
    along = along * (1 + CANOPY_MARGIN_M / max(float(np.linalg.norm(along)), 1e-9))
    left = np.array([-along[1], along[0]]) / max(np.linalg.norm(along), 1e-9)
    corner = np.array([*(a - left * CANOPY_WIDTH_M / 2), CANOPY_HEIGHT_M])
    return Panel(corner, np.array([*along, 0.0]), np.array([*(left * CANOPY_WIDTH_M), 0.0]), texture)


def segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances (N,) from 2-D ``points`` (N, 2) to the segment from ``a`` to ``b``."""
    along = b - a
    s = np.clip((points - a) @ along / max(along @ along, 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - (a + s[:, None] * along), axis=1)


def place_walls(rng: np.random.Generator, count: int, people: list[Person], textures: list[np.ndarray]) -> list[Panel]:
    """Up to ``count`` upright walls clear of the people's paths (`WALL_CLEARANCE_M`), placed at random."""
    step = max(1, round(0.5 / people[0].walk.dt))
    paths = [(person.walk.positions[::step], WALL_CLEARANCE_M[person.label != TARGET]) for person in people]
    walls: list[Panel] = []
    for _ in range(count * PLACEMENT_TRIES):
        if len(walls) == count:
            break
        centre, angle = rng.uniform(-25.0, 25.0, 2), rng.uniform(0.0, math.pi)
        half = rng.uniform(*WALL_LENGTH_M) / 2 * np.array([math.cos(angle), math.sin(angle)])
        if all(segment_distance(path, centre - half, centre + half).min() >= clearance for path, clearance in paths):
            texture = textures[len(walls) % len(textures)]
            height = np.array([0.0, 0.0, rng.uniform(*WALL_HEIGHT_M)])
            walls.append(Panel(np.array([*(centre - half), 0.0]), np.array([*(2 * half), 0.0]), height, texture))
    return walls


def event_times(count: int, duration_s: float) -> list[float]:
    """``count`` times spread evenly over the `EVENTS_SPAN` of a flight."""
    first, last = (fraction * duration_s for fraction in EVENTS_SPAN)
    return [first + (last - first) * (i + 0.5) / count for i in range(count)]


def build_world(scene: Scene, seed: int, library: Library, dt: float = TICK_S) -> World:
    """The world of ``scene`` with people and backgrounds from ``library``, random by ``seed``."""
    rng = np.random.default_rng(seed)
    waypoints = np.array([[x, y, PATROL_ALTITUDE_M] for x, y in PATROL_WAYPOINTS])
    start = waypoints[0, :2]
    bearing = math.atan2(-start[1], -start[0]) + math.radians(rng.uniform(-1, 1) * HERO_BEARING_SPREAD_DEG)
    hero_start = start + scene.hero_distance_m * np.array([math.cos(bearing), math.sin(bearing)])
    occlusions = list(zip(event_times(len(scene.occlusions_s), scene.duration_s), scene.occlusions_s))
    straight = [(at - 1.0, at + length + 2.0) for at, length in occlusions]
    hero_walk = random_walk(rng, hero_start, scene.duration_s, dt, rng.uniform(*SPEED_RANGE_M_S), straight=straight)

    def cutout(kind: str) -> Cutout:
        choices = getattr(library, kind)
        return choices[int(rng.integers(len(choices)))]

    people = [Person(hero_walk, cutout("heroes"), TARGET)]
    for _ in range(scene.bystanders):
        near = hero_walk.position(rng.uniform(0, scene.duration_s)) + rng.uniform(-1, 1, 2) * BYSTANDER_SPREAD_M
        walk = random_walk(rng, near, scene.duration_s, dt, rng.uniform(*SPEED_RANGE_M_S))
        people.append(Person(walk, cutout("bystanders"), OTHER))
    for i, at in enumerate(event_times(scene.crossings, scene.duration_s)):
        walk = crossing_walk(hero_walk, at, rng.uniform(*CROSSING_SPEED_M_S), CROSSING_BEHIND_M, (-1.0) ** i)
        people.append(Person(walk, cutout("bystanders"), OTHER))
    textures = [background[: background.shape[0] // 2] for background in library.backgrounds]
    panels = [
        canopy_over(hero_walk, at, length, textures[i % len(textures)]) for i, (at, length) in enumerate(occlusions)
    ]
    panels += place_walls(rng, scene.walls, people, textures)
    facing = bearing - math.radians(SWEEP_LEAD_DEG) if scene.facing_hero else bearing + math.pi
    x, y, z = waypoints[0]
    return World(
        people=tuple(people),
        panels=tuple(panels),
        panorama=panorama(rng, library.backgrounds),
        waypoints=waypoints,
        start=Pose(x, y, z, 0.0, 0.0, math.degrees(facing)),
        duration_s=scene.duration_s,
        source=library.source,
    )
