"""From detections to decisions, frame after frame: the trackers, without I/O.

Both trackers take the pipeline's `Detection` of each processed frame (or None) with the frame's timestamp and
return a `Decision`: what the tracker made of the frame (its `Status`), the position to send the simulator (or
None) and whether the target was found or lost. They know nothing of the wire: `follower.answers` turns each
decision into the simulator's events (``object_detected`` and a box marker for a position, ``object_lost``).

- ``none``, `FrameTracker`: the original follower, frame by frame. Every detection is sent; the first one after
  PATROL switches to FOLLOW.
- ``kalman`` (the default), `KalmanTracker`: a target is a `Track`, a Kalman filter on its ground position.
  A detection becomes a candidate; the drone follows it only once it is confirmed, and then gets the filtered
  position, held through short misses.

Conventions: world metres, ROS axes (x forward, y left, z up; `sim_bridge.geometry`), times in seconds (the
frames' ``timestamp``), depth the detection's z-depth in metres.

The filter of a `Track` (filterpy's ``KalmanFilter``; the names are the textbook's):

- state ``x = [x, y, vx, vy]`` (m, m, m/s, m/s): the target's ground position and velocity, constant velocity;
- measurement ``z = [x, y]`` (m): the detection's world position on the ground, ``H = [[1, 0, 0, 0], [0, 1, 0, 0]]``;
- ``F = [[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1]]``, ``dt`` the time between frames (s);
- ``Q``: discrete white-noise acceleration of standard deviation ``accel_noise`` (m/s²) on each axis;
- ``R = sigma(d)² I`` with ``sigma(d) = noise_m + noise_per_m * d`` (m): a detection's error grows with its depth
  ``d``, since the depth error and a pixel's footprint both grow with range;
- a new track starts at ``x = [x, y, 0, 0]``, ``P = diag(sigma², sigma², v0², v0²)`` with v0 = `INITIAL_SPEED_M_S`.

Gate: a detection belongs to a track when its squared Mahalanobis distance from the track's prediction,
``y' S^-1 y`` with ``y = z - H x`` and ``S = H P H' + R``, is at most the chi-square quantile of 2 degrees of
freedom at probability ``gate``, ``-2 ln(1 - gate)`` (9.21 at 0.99).

`KalmanTracker`, each frame: every track is predicted to the frame's time; the detection goes to the followed
track when inside its gate, else to the nearest candidate whose gate holds it, else starts a new candidate. A
candidate is confirmed by a detection that gives it ``confirm_hits`` of its last ``confirm_frames`` frames:
while patrolling, that switches to FOLLOW ("found"); while following, the confirmed candidate replaces the
followed target, which has gone unseen meanwhile (a switch: neither lost nor found). A candidate with no
detection in its last ``confirm_frames`` frames is dropped. While following, a frame without an accepted
detection (none, or one outside the gate: a miss of the followed track) sends the predicted position for at
most ``coast_frames`` frames in a row, then nothing; more than ``lost_after`` in a row lose the target (PATROL,
which the server answers with ``object_lost``). The height sent is an exponential average of the heights of the
track's detections (weight `HEIGHT_WEIGHT` for the newest; the filter is on the ground): it follows the visible
part of the target without its frame-to-frame noise.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter
from filterpy.stats import mahalanobis

from follower.config import TRACKERS, FollowerConfig
from follower.pipeline import Detection

FRAME_INTERVAL_S = 0.2  # the simulator's 5 frames/s: the step when the timestamps do not increase
MAX_STEP_S = 1.0  # a longer gap between timestamps (a paused simulator) is predicted as this
INITIAL_SPEED_M_S = 2.0  # standard deviation of a new track's unknown velocity on each axis: a brisk walk
HEIGHT_WEIGHT = 0.5  # weight of the newest detection in the height sent (an exponential average)
H = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])


class Mode(enum.Enum):
    """What the follower tells the simulator to do."""

    PATROL = "PATROL"
    FOLLOW = "FOLLOW"


class Status(enum.Enum):
    """What the tracker made of one frame."""

    IDLE = "idle"  # patrolling, no detection
    CANDIDATE = "candidate"  # patrolling, a detection not confirmed (yet): nothing sent
    CONFIRMED = "confirmed"  # a confirmed detection: PATROL → FOLLOW ("Target found!")
    SWITCHED = "switched"  # following; a target confirmed elsewhere replaced the followed one, unseen meanwhile
    TRACKING = "tracking"  # following; the detection is the followed target's
    COASTING = "coasting"  # following without a detection of the target: its predicted position is sent
    HOLDING = "holding"  # following without a detection of the target, past coasting: nothing sent
    LOST = "lost"  # too long without the target: FOLLOW → PATROL ("Target lost!")


@dataclass(frozen=True)
class Candidate:
    """An unconfirmed target: its position (x, y, z) in metres and its detections in the confirmation window."""

    position: tuple[float, float, float]
    hits: int


@dataclass(frozen=True)
class Decision:
    """One frame's outcome: the status, the position to send (or None: nothing, or ``object_lost`` when
    `lost`), the frames in a row without a detection of the followed target, whether the detection fell outside
    the followed target's gate (``outlier``), and the candidates after the frame."""

    status: Status = Status.IDLE
    position: tuple[float, float, float] | None = None
    misses: int = 0
    outlier: bool = False
    candidates: tuple[Candidate, ...] = ()

    @property
    def found(self) -> bool:
        """Whether this frame switched to FOLLOW."""
        return self.status is Status.CONFIRMED

    @property
    def lost(self) -> bool:
        """Whether this frame switched back to PATROL."""
        return self.status is Status.LOST

    @property
    def mode(self) -> Mode:
        """The mode after this frame."""
        return Mode.PATROL if self.status in (Status.IDLE, Status.CANDIDATE, Status.LOST) else Mode.FOLLOW

    def to_json(self) -> dict[str, Any]:
        """The decision as a flight's ``decision`` line records it."""
        return {
            "status": self.status.value,
            "position": None if self.position is None else list(self.position),
            "misses": self.misses,
            "outlier": self.outlier,
            "candidates": [{"position": list(c.position), "hits": c.hits} for c in self.candidates],
        }


@dataclass(frozen=True)
class TrackerSettings:
    """The tracker's settings (see the module docstring); the defaults are `FollowerConfig`'s."""

    tracker: str = FollowerConfig.tracker
    lost_after: int = FollowerConfig.lost_after
    coast_frames: int = FollowerConfig.coast_frames
    confirm_hits: int = FollowerConfig.confirm_hits
    confirm_frames: int = FollowerConfig.confirm_frames
    gate: float = FollowerConfig.gate
    noise_m: float = FollowerConfig.noise_m
    noise_per_m: float = FollowerConfig.noise_per_m
    accel_noise: float = FollowerConfig.accel_noise

    @classmethod
    def from_config(cls, config: FollowerConfig) -> TrackerSettings:
        """The tracker's part of the configuration."""
        return config.part(cls)

    def measurement_sigma(self, depth_m: float) -> float:
        """Standard deviation (m) of a detection's ground position on each axis at z-depth ``depth_m``."""
        return self.noise_m + self.noise_per_m * depth_m

    def measurement_cov(self, depth_m: float) -> np.ndarray:
        """``R`` for a detection at z-depth ``depth_m``: ``sigma(d)² I`` (m²)."""
        return np.eye(2) * self.measurement_sigma(depth_m) ** 2

    @property
    def gate_distance2(self) -> float:
        """The largest squared Mahalanobis distance inside the gate: chi-square, 2 degrees of freedom."""
        return -2.0 * math.log(1.0 - self.gate)


def time_step(previous_s: float, now_s: float) -> float:
    """Seconds from one frame's timestamp to the next: `FRAME_INTERVAL_S` when they do not increase, at most
    `MAX_STEP_S`."""
    step = now_s - previous_s
    return min(step, MAX_STEP_S) if step > 0 else FRAME_INTERVAL_S


class Track:
    """One target: a constant-velocity Kalman filter on its ground position (``kf``), the average height of its
    detections, which of its last ``confirm_frames`` frames had a detection (``hits``) and how many frames in
    a row had none (``misses``)."""

    def __init__(self, detection: Detection, t: float, settings: TrackerSettings) -> None:
        self.settings = settings
        self.t = t
        sigma = settings.measurement_sigma(detection.depth_m)
        self.kf = KalmanFilter(dim_x=4, dim_z=2)
        self.kf.x = np.array([*detection.position[:2], 0.0, 0.0], dtype=np.float64)
        self.kf.P = np.diag([sigma**2, sigma**2, INITIAL_SPEED_M_S**2, INITIAL_SPEED_M_S**2])
        self.kf.H = H
        self.kf.R = settings.measurement_cov(detection.depth_m)
        self.height = float(detection.position[2])
        self.hits: deque[bool] = deque(maxlen=settings.confirm_frames)
        self.misses = 0

    @property
    def position(self) -> tuple[float, float, float]:
        """The filtered (or predicted) ground position and the average height, metres."""
        x, y = self.kf.x[:2]
        return float(x), float(y), self.height

    @property
    def confirmed(self) -> bool:
        """Whether ``confirm_hits`` of the last ``confirm_frames`` frames had a detection of this track."""
        return sum(self.hits) >= self.settings.confirm_hits

    def predict(self, t: float) -> None:
        """Advance the filter to the frame at time ``t`` (s): ``x = F x``, ``P = F P F' + Q``."""
        dt = time_step(self.t, t)
        self.t = t
        self.kf.F = np.array([[1.0, 0.0, dt, 0.0], [0.0, 1.0, 0.0, dt], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
        self.kf.Q = Q_discrete_white_noise(2, dt, self.settings.accel_noise**2, block_size=2, order_by_dim=False)
        self.kf.predict()

    def distance2(self, detection: Detection) -> float:
        """Squared Mahalanobis distance of a detection from the prediction, with the detection's own noise."""
        innovation_cov = H @ self.kf.P @ H.T + self.settings.measurement_cov(detection.depth_m)
        return mahalanobis(detection.position[:2], H @ self.kf.x, innovation_cov) ** 2

    def gates(self, detection: Detection) -> bool:
        """Whether a detection falls inside this track's gate."""
        return self.distance2(detection) <= self.settings.gate_distance2

    def update(self, detection: Detection) -> None:
        """Correct the filter with a detection (``R`` for its depth) and fold its height into the average."""
        self.kf.R = self.settings.measurement_cov(detection.depth_m)
        self.kf.update(np.asarray(detection.position[:2], dtype=np.float64))
        self.height += HEIGHT_WEIGHT * (float(detection.position[2]) - self.height)

    def record(self, hit: bool) -> None:
        """Note whether this frame had a detection of this track."""
        self.hits.append(hit)
        self.misses = 0 if hit else self.misses + 1


class Tracker:
    """What the trackers share: the mode, the frames in a row without the target (``misses``), and the decisions
    that send a position or lose the target. Subclasses implement `update`."""

    name = ""

    def __init__(self, lost_after: int = FollowerConfig.lost_after) -> None:
        self.lost_after = lost_after
        self.mode = Mode.PATROL
        self.misses = 0

    def update(self, detection: Detection | None, t: float) -> Decision:
        """Advance by one processed frame: its detection (or None) and its timestamp (s)."""
        raise NotImplementedError

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """The unconfirmed targets (none for a tracker without confirmation)."""
        return ()

    def reset(self) -> None:
        """Back to PATROL without events (the simulator went away)."""
        self.mode, self.misses = Mode.PATROL, 0

    def _send(self, position: Any, status: Status, outlier: bool = False) -> Decision:
        """Send ``position`` (x, y, z); a confirmation switches to FOLLOW."""
        if status is Status.CONFIRMED:
            self.mode = Mode.FOLLOW
        x, y, z = (float(c) for c in position)
        return Decision(status, (x, y, z), self.misses, outlier, self.candidates)

    def _lose(self, outlier: bool = False) -> Decision:
        """The target is lost: back to PATROL."""
        self.mode = Mode.PATROL
        return Decision(Status.LOST, None, self.misses, outlier, self.candidates)


class FrameTracker(Tracker):
    """The original follower (``--tracker none``): every detection is sent; the first one after PATROL is
    "found"; more than ``lost_after`` frames in a row without one, while following, is "lost"."""

    name = "none"

    def update(self, detection: Detection | None, t: float = 0.0) -> Decision:
        """Advance by one processed frame (the timestamp is not used)."""
        if detection is not None:
            self.misses = 0
            return self._send(detection.position, Status.CONFIRMED if self.mode is Mode.PATROL else Status.TRACKING)
        self.misses += 1
        if self.mode is Mode.FOLLOW and self.misses > self.lost_after:
            return self._lose()
        return Decision(Status.HOLDING if self.mode is Mode.FOLLOW else Status.IDLE, None, self.misses)


class KalmanTracker(Tracker):
    """Confirmation, gating and coasting around one Kalman filter per target (see the module docstring)."""

    name = "kalman"

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        super().__init__(self.settings.lost_after)
        self.track: Track | None = None
        self._candidates: list[Track] = []

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """The unconfirmed targets, oldest first."""
        return tuple(Candidate(track.position, sum(track.hits)) for track in self._candidates)

    def update(self, detection: Detection | None, t: float) -> Decision:
        """Advance by one processed frame: its detection (or None) and its timestamp (s)."""
        followed = self.track
        tracks = [*([] if followed is None else [followed]), *self._candidates]
        for track in tracks:
            track.predict(t)
        matched, outlier = None, False
        if detection is not None:
            outlier = followed is not None and not followed.gates(detection)
            matched = followed if followed is not None and not outlier else self._nearest_candidate(detection)
            if matched is None:
                matched = Track(detection, t, self.settings)
                self._candidates.append(matched)
                tracks.append(matched)
            else:
                matched.update(detection)
        for track in tracks:
            track.record(track is matched)
        self._candidates = [track for track in self._candidates if any(track.hits)]
        if matched is not None and matched is not followed and matched.confirmed:
            self._candidates.remove(matched)
            self.track, self.misses = matched, 0
            status = Status.CONFIRMED if followed is None else Status.SWITCHED
            return self._send(matched.position, status, outlier)
        if followed is not None:
            return self._follow(followed, outlier)
        status = Status.IDLE if matched is None else Status.CANDIDATE
        return Decision(status, None, 0, False, self.candidates)  # no followed target to miss

    def reset(self) -> None:
        """Back to PATROL without events, forgetting the followed target and the candidates."""
        super().reset()
        self.track, self._candidates = None, []

    def _follow(self, followed: Track, outlier: bool) -> Decision:
        """A frame while following: send the filtered position, a coasted one, nothing, or lose the target."""
        self.misses = followed.misses
        if self.misses == 0:
            return self._send(followed.position, Status.TRACKING)
        if self.misses > self.lost_after:
            self.track = None
            return self._lose(outlier)
        if self.misses <= self.settings.coast_frames:
            return self._send(followed.position, Status.COASTING, outlier)
        return Decision(Status.HOLDING, None, self.misses, outlier, self.candidates)

    def _nearest_candidate(self, detection: Detection) -> Track | None:
        """The candidate nearest to a detection (Mahalanobis) among those whose gate holds it, or None."""
        inside = [(track.distance2(detection), i) for i, track in enumerate(self._candidates) if track.gates(detection)]
        return self._candidates[min(inside)[1]] if inside else None


def make_tracker(settings: TrackerSettings) -> Tracker:
    """The tracker named by ``settings.tracker``: ``kalman`` or ``none``."""
    if settings.tracker == "none":
        return FrameTracker(settings.lost_after)
    if settings.tracker == "kalman":
        return KalmanTracker(settings)
    raise ValueError(f"tracker must be one of {', '.join(TRACKERS)}. Received: tracker={settings.tracker!r}")
