"""People's paths on the flight world's flat ground: random walks with turns and pauses, and crossings.

A `Walk` is a path sampled every ``dt`` seconds from time 0: ground positions (x, y) in metres (world frame,
`sim_bridge.geometry`) and headings in radians (the direction the person faces: the walking direction, kept
through a pause). A random walk is a chain of legs: a leg walks for `LEG_S` seconds at the person's speed after a
turn of up to `MAX_TURN_DEG`, or, with probability `PAUSE_PROBABILITY`, stands for `PAUSE_S` seconds. A person turns
at most `TURN_RATE_DEG_S`, and one that has strayed more than ``arena_m`` from the origin turns back towards it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SPEED_RANGE_M_S = (0.5, 1.5)
LEG_S = (2.0, 6.0)
PAUSE_S = (1.0, 3.0)
PAUSE_PROBABILITY = 0.2
MAX_TURN_DEG = 100.0
TURN_RATE_DEG_S = 120.0
ARENA_M = 30.0


@dataclass(frozen=True)
class Walk:
    """A path: positions (n, 2) m and headings (n,) rad at times ``0, dt, 2 dt, ...``; held at its ends."""

    positions: np.ndarray
    headings: np.ndarray
    dt: float

    def index(self, t: float) -> int:
        """The sample nearest to time ``t`` (s), clipped to the path."""
        return int(min(max(round(t / self.dt), 0), len(self.headings) - 1))

    def position(self, t: float) -> np.ndarray:
        """The ground position (2,) at time ``t``."""
        return self.positions[self.index(t)]

    def heading(self, t: float) -> float:
        """The heading (rad) at time ``t``."""
        return float(self.headings[self.index(t)])


def turn_towards(heading: float, target: float, max_step: float) -> float:
    """``heading`` turned towards ``target`` (radians) by at most ``max_step``, the short way round."""
    difference = (target - heading + math.pi) % (2 * math.pi) - math.pi
    return heading + max(-max_step, min(max_step, difference))


def random_walk(
    rng: np.random.Generator,
    start: np.ndarray,
    duration_s: float,
    dt: float,
    speed: float,
    arena_m: float = ARENA_M,
    straight: Sequence[tuple[float, float]] = (),
) -> Walk:
    """A random walk from ``start`` (x, y) at ``speed`` m/s for ``duration_s``; within each of the ``straight``
    windows (t0, t1) seconds it neither turns nor pauses (the leg that covers it is lengthened)."""
    steps = int(round(duration_s / dt)) + 1
    positions, headings = np.empty((steps, 2)), np.empty(steps)
    position, heading = np.array(start, dtype=np.float64), float(rng.uniform(-math.pi, math.pi))
    i = 0
    while i < steps:
        t = i * dt
        pause = rng.random() < PAUSE_PROBABILITY
        length = float(rng.uniform(*(PAUSE_S if pause else LEG_S)))
        target, leg_speed = heading + math.radians(rng.uniform(-MAX_TURN_DEG, MAX_TURN_DEG)), speed
        window = next((w for w in straight if t < w[1] and t + length > w[0] - 1.0), None)
        if window is not None:
            length, target = max(length, window[1] - t), heading  # done turning a second before the window
        elif pause:
            target, leg_speed = heading, 0.0
        elif np.linalg.norm(position) > arena_m:
            target = math.atan2(-position[1], -position[0]) + rng.uniform(-math.pi / 4, math.pi / 4)
        for _ in range(max(1, round(length / dt))):
            if i == steps:
                break
            positions[i], headings[i] = position, heading
            heading = turn_towards(heading, target, math.radians(TURN_RATE_DEG_S) * dt)
            position = position + leg_speed * dt * np.array([math.cos(heading), math.sin(heading)])
            i += 1
    return Walk(positions, headings, dt)


def crossing_walk(other: Walk, at_s: float, speed: float, behind_m: float, side: float = 1.0) -> Walk:
    """A straight walk at ``speed`` across ``other``'s path, square to its heading, through the point ``behind_m``
    behind ``other``'s position at ``at_s``, reached at ``at_s``: seen from behind ``other``, it passes in front of
    it. ``side`` (+1 or -1) says from which side it comes."""
    heading = other.heading(at_s)
    crossing = other.position(at_s) - behind_m * np.array([math.cos(heading), math.sin(heading)])
    direction = side * np.array([-math.sin(heading), math.cos(heading)])
    times = np.arange(len(other.headings)) * other.dt
    positions = crossing + np.outer(times - at_s, direction) * speed
    return Walk(positions, np.full(len(times), math.atan2(direction[1], direction[0])), other.dt)
