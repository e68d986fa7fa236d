"""The simulator's drone, flying the flight world (`sim_bridge.world`) as QuadSim does in answer to the follower.

From ../shared/quadsim/PROTOCOL.md, "What the simulator does with the follower's answers" (`CommandServer.cs`,
`FSM/PatrolState.cs`, `FSM/FollowTargetState.cs`, `QuadMotor.cs`). Two behaviours (`BEHAVIOURS`):

- ``quadsim``, the simulator's own. An ``object_detected`` is accepted only when the true hero is in view
  (`Drone.in_view`: no panel on the line from the camera to the hero's feet plus 1 m, and that line within the
  camera's whole field of view of its forward axis); it then enters FOLLOW or stays in it. FOLLOW flies towards
  the back point ``hero - hero.forward * FOLLOW_DISTANCE_M + up * (FOLLOW_HEIGHT_M + 1)`` of the **true hero**,
  the body yawing towards it, the gimbal looking at the hero plus 1 m.
- ``coords``, a drone that knows only what it is sent: every ``object_detected`` is accepted, and FOLLOW flies to
  the point `FOLLOW_DISTANCE_M` short of the last position sent along the horizontal line from the drone,
  `FOLLOW_HEIGHT_M` above it, the gimbal aimed at that position.

Both fly FOLLOW at ``MAX_PATROL_SPEED_M_S * f``, f ramping from 0 to 1 over `FOLLOW_ACCEL_S` and, within
`FOLLOW_SLOW_M` of the back point, f = distance / `FOLLOW_SLOW_M`. Both go back to PATROL on ``object_lost`` or when
no PING or PONG came for `PING_TIMEOUT_S` while in FOLLOW (`Drone.step` reports it). PATROL: the drone brakes
(its velocity halved every step) and idles while the gimbal sweeps 360° at `SWEEP_DEG_S`; then it flies from
waypoint to waypoint of the world's patrol path, from the nearest one, at ``MAX_PATROL_SPEED_M_S * f`` (f ramping
over `PATROL_ACCEL_S`, and f = distance / `PATROL_SLOW_M` within that of the waypoint), waits `PATROL_WAIT_S` at
each, the body yawing towards the next at `YAW_RATE_DEG_S`, the gimbal facing ahead and sweeping up and down over
`GIMBAL_SWEEP_V_DEG` about `PATROL_PITCH_DEG`.

The scripts' defaults are used where they set one; the sweep's speed (``sweepSpeed`` 0.5, in units the scripts do
not state), the vertical sweep's centre and period, and the patrol path are the scene's, so ours are chosen here
and named. Poses are those the simulator sends: metres and degrees, rounded as its N4 strings round them.
"""

from __future__ import annotations

import enum
import math

import numpy as np

from sim_bridge.geometry import Pose
from sim_bridge.synth import GIMBAL_OFFSET_M, IMAGE_SIZE
from sim_bridge.walkers import turn_towards
from sim_bridge.world import World, horizontal_fov_deg

BEHAVIOURS = ("quadsim", "coords")
MAX_PATROL_SPEED_M_S = 30.0
PATROL_ACCEL_S = 3.0
PATROL_SLOW_M = 5.0  # PatrolState: stoppingDist 25, compared with the squared distance
PATROL_WAIT_S = 3.0
ARRIVE_M = 0.05
FOLLOW_DISTANCE_M = 2.0
FOLLOW_HEIGHT_M = 2.0
FOLLOW_ACCEL_S = 2.0
FOLLOW_SLOW_M = 10.0
YAW_RATE_DEG_S = 90.0
GIMBAL_SWEEP_V_DEG = 45.0
PING_TIMEOUT_S = 3.0
BRAKE_STOP_M2_S2 = 0.001
# The scene's choices (see the module docstring).
SWEEP_DEG_S = 30.0
PATROL_PITCH_DEG = 37.5  # the vertical sweep's centre, degrees below the horizon
SWEEP_V_PERIOD_S = 4.0
FIELD_OF_VIEW_DEG = horizontal_fov_deg(IMAGE_SIZE)  # Unity's is vertical; the frames are square


class Mode(enum.Enum):
    """The simulator's state."""

    PATROL = "PATROL"
    FOLLOW = "FOLLOW"


class Phase(enum.Enum):
    """Where a patrol is: the 360° sweep on entering it, flying to a waypoint, waiting at one."""

    SWEEP = "sweep"
    FLY = "fly"
    WAIT = "wait"


def look_angles(origin: np.ndarray, point: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees that aim a frame at ``origin`` at ``point``; pitch positive looking down."""
    d = np.asarray(point, np.float64) - origin
    return math.degrees(math.atan2(d[1], d[0])), math.degrees(math.atan2(-d[2], math.hypot(d[0], d[1])))


def wrap_deg(angle: float) -> float:
    """An angle in degrees brought into [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


class Drone:
    """The drone in ``world``, flying ``behaviour`` (`BEHAVIOURS`); starts in PATROL at the world's start pose."""

    mode: Mode
    phase: Phase
    phase_start_s: float

    def __init__(self, world: World, behaviour: str = "quadsim") -> None:
        behaviour = behaviour.lower()
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}. Received: behaviour={behaviour!r}")
        self.world = world
        self.behaviour = behaviour
        self.position = world.start.position
        self.velocity = np.zeros(3)
        self.yaw = world.start.yaw
        self.gimbal_yaw, self.gimbal_pitch = world.start.yaw, PATROL_PITCH_DEG
        self.target: np.ndarray | None = None  # the last position accepted
        self.last_ping_s = self.follow_start_s = self.sweep_start_s = 0.0
        self.waypoint = 0
        self.enter_patrol(0.0)

    # ------------------------------------------------------------------------------------------ what it sends

    def poses(self) -> tuple[Pose, Pose]:
        """(body pose, gimbal pose) as the simulator sends them, rounded to its four decimals."""
        body = Pose(*np.round([*self.position, 0.0, 0.0, wrap_deg(self.yaw)], 4))
        camera = self.position + GIMBAL_OFFSET_M
        gimbal = Pose(*np.round([*camera, 0.0, self.gimbal_pitch, wrap_deg(self.gimbal_yaw)], 4))
        return body, gimbal

    # ------------------------------------------------------------------------------------------ what it hears

    def in_view(self, t: float) -> bool:
        """The simulator's check: no panel on the line from the camera to the hero's feet plus 1 m, and that line
        within the camera's whole field of view of its forward axis."""
        camera = self.poses()[1]
        goal = self.world.hero.feet(t) + np.array([0.0, 0.0, 1.0])
        line = goal - camera.position
        cosine = camera.rotation[:, 0] @ line / max(np.linalg.norm(line), 1e-9)
        within = math.degrees(math.acos(max(-1.0, min(1.0, cosine)))) < FIELD_OF_VIEW_DEG
        return within and not self.world.sight_blocked(camera.position, goal)

    def detected(self, coords: np.ndarray, t: float) -> bool:
        """``object_detected`` at ``coords``: whether it was accepted (the drone then follows)."""
        if self.behaviour == "quadsim" and not self.in_view(t):
            return False
        self.target = np.asarray(coords, np.float64)
        if self.mode is Mode.PATROL:
            self.mode, self.follow_start_s = Mode.FOLLOW, t
        return True

    def lost(self, t: float) -> bool:
        """``object_lost``: whether it switched FOLLOW to PATROL."""
        if self.mode is Mode.FOLLOW:
            self.enter_patrol(t)
            return True
        return False

    def pinged(self, t: float) -> None:
        """A PING or PONG arrived: the simulator's ``ping`` event."""
        self.last_ping_s = t

    # ------------------------------------------------------------------------------------------ how it flies

    def step(self, t: float, dt: float) -> bool:
        """Fly from ``t`` to ``t + dt``; returns True when the ping watchdog switched FOLLOW to PATROL at ``t``."""
        timed_out = self.mode is Mode.FOLLOW and t - self.last_ping_s > PING_TIMEOUT_S
        if timed_out:
            self.enter_patrol(t)
        if self.mode is Mode.FOLLOW:
            self.follow(t, dt)
        else:
            self.patrol(t, dt)
        return timed_out

    def enter_patrol(self, t: float) -> None:
        """Switch to PATROL: brake and sweep the gimbal round."""
        self.mode, self.phase, self.phase_start_s = Mode.PATROL, Phase.SWEEP, t

    def patrol(self, t: float, dt: float) -> None:
        """One step of PATROL."""
        if self.phase is Phase.SWEEP:
            self.velocity = self.velocity * 0.5 if self.velocity @ self.velocity > BRAKE_STOP_M2_S2 else np.zeros(3)
            self.position = self.position + self.velocity * dt
            self.gimbal_yaw += SWEEP_DEG_S * dt
            if t - self.phase_start_s > 360.0 / SWEEP_DEG_S:
                distances = np.linalg.norm(self.world.waypoints - self.position, axis=1)
                self.waypoint, self.phase, self.phase_start_s = int(np.argmin(distances)), Phase.FLY, t
                self.sweep_start_s = t
            return
        sweep = math.sin(2 * math.pi * (t - self.sweep_start_s) / SWEEP_V_PERIOD_S)
        self.gimbal_yaw, self.gimbal_pitch = self.yaw, PATROL_PITCH_DEG + GIMBAL_SWEEP_V_DEG / 2 * sweep
        if self.phase is Phase.WAIT:
            if t - self.phase_start_s > PATROL_WAIT_S:
                self.phase, self.phase_start_s = Phase.FLY, t
            return
        destination = self.world.waypoints[self.waypoint]
        if np.linalg.norm(destination - self.position) < ARRIVE_M:
            self.velocity = np.zeros(3)
            self.waypoint = (self.waypoint + 1) % len(self.world.waypoints)
            self.phase, self.phase_start_s = Phase.WAIT, t
            return
        self.fly_towards(destination, t, dt, PATROL_SLOW_M, PATROL_ACCEL_S)
        self.turn_towards(destination, dt)

    def follow(self, t: float, dt: float) -> None:
        """One step of FOLLOW: fly to the back point, yaw towards the followed point, aim the gimbal."""
        up = np.array([0.0, 0.0, 1.0])
        if self.behaviour == "quadsim":
            hero = self.world.hero
            followed = hero.feet(t)
            back = followed - hero.forward(t) * FOLLOW_DISTANCE_M + up * (FOLLOW_HEIGHT_M + 1.0)
            aim = followed + up
        else:
            if self.target is None:  # detected() sets it before the first FOLLOW
                raise RuntimeError("the drone follows but has no accepted position")
            followed = aim = self.target
            towards = (followed - self.position) * np.array([1.0, 1.0, 0.0])
            back = followed - towards / max(np.linalg.norm(towards), 1e-9) * FOLLOW_DISTANCE_M + up * FOLLOW_HEIGHT_M
        self.fly_towards(back, t, dt, FOLLOW_SLOW_M, FOLLOW_ACCEL_S, self.follow_start_s)
        self.turn_towards(followed, dt)
        self.gimbal_yaw, self.gimbal_pitch = look_angles(self.position + GIMBAL_OFFSET_M, aim)

    def fly_towards(
        self, point: np.ndarray, t: float, dt: float, slow_m: float, accel_s: float, since_s: float | None = None
    ) -> None:
        """Move towards ``point`` at the top speed times the factor of the module docstring, without overshooting."""
        offset = point - self.position
        distance = float(np.linalg.norm(offset))
        if distance < 1e-9:
            self.velocity = np.zeros(3)
            return
        elapsed = t - (self.phase_start_s if since_s is None else since_s)
        factor = distance / slow_m if distance < slow_m else min(1.0, elapsed / accel_s)
        speed = min(MAX_PATROL_SPEED_M_S * factor, distance / dt)
        self.velocity = offset / distance * speed
        self.position = self.position + self.velocity * dt

    def turn_towards(self, point: np.ndarray, dt: float) -> None:
        """Yaw the body towards ``point`` (horizontally) at `YAW_RATE_DEG_S` at most."""
        wanted = look_angles(self.position, point)[0]
        self.yaw = math.degrees(
            turn_towards(math.radians(self.yaw), math.radians(wanted), math.radians(YAW_RATE_DEG_S * dt))
        )
