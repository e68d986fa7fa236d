"""``GET /metrics``: the follower's counters and latencies in Prometheus' text format.

Each server has its own `prometheus_client.CollectorRegistry`, so several can live in one process. Counters
and the mode are read from the `FollowerState` when scraped (nothing is counted twice, and the frame path
pays nothing for them); the latency histograms are observed once per processed frame.

Exported: ``follower_frames_total`` (sensor frames received), ``follower_frames_processed_total``,
``follower_frames_dropped_total``, ``follower_frames_rejected_total{reason}``,
``follower_frames_failed_total``, ``follower_detections_total``, ``follower_target_found_total``,
``follower_target_lost_total``, ``follower_following`` (1 in FOLLOW, 0 in PATROL); the tracker's
``follower_candidate_frames_total`` (detections held back as unconfirmed candidates while patrolling),
``follower_track_misses_total`` (detections outside the followed target's gate),
``follower_coasting_frames_total`` (predicted positions sent), ``follower_target_switches_total`` (a target
confirmed elsewhere replaced the followed one, unseen meanwhile), ``follower_candidates`` (unconfirmed candidates
now) and ``follower_tracker_status{status}`` (1 for the status of the last frame, 0 for the others); and the
histograms ``follower_latency_seconds`` (arrival to decision) and ``follower_stage_seconds{stage}``, the served
frame's path in order (`STAGES`): ``queue`` (arrival on the hub to the hand-over to the inference worker),
``to_worker`` (until the worker starts it), ``decode``, ``inference`` (resize and network), ``locate``,
``to_hub`` (the worker's end until the hub resumes), ``decide`` (tracker and recording) and ``emit`` (the events
queued for the socket's writer).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import flask
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from follower.state import FollowerState
from follower.tracking import Mode, Status

# Counter name → (`FollowerState.counts` key, help text).
STATE_COUNTERS = {
    "follower_frames_total": ("received", "Sensor frames received from the simulator."),
    "follower_frames_processed_total": ("processed", "Frames that went through the whole pipeline."),
    "follower_frames_dropped_total": ("dropped", "Frames replaced by a newer one before processing."),
    "follower_frames_failed_total": ("errors", "Frames whose processing raised an unexpected error."),
    "follower_packets_dropped_total": ("bad_packets", "Malformed packets dropped unread (the connection is kept)."),
    "follower_detections_total": ("detections", "Processed frames in which the target was located."),
    "follower_target_found_total": ("found", "Switches from PATROL to FOLLOW."),
    "follower_target_lost_total": ("lost", "Switches from FOLLOW to PATROL after losing the target."),
    "follower_candidate_frames_total": (
        "candidate_frames",
        "Detections held back while patrolling because their candidate is not confirmed.",
    ),
    "follower_track_misses_total": ("track_misses", "Detections outside the followed target's gate, while following."),
    "follower_coasting_frames_total": ("coasting_frames", "Frames answered with the target's predicted position."),
    "follower_target_switches_total": (
        "switches",
        "Targets confirmed elsewhere while following, replacing the followed one, which went unseen.",
    ),
}

# Stage seconds key (`process_frame`'s timings and the server's own) → ``stage`` label, in the frame's order.
STAGES = {
    "queue": "queue",
    "to_worker": "to_worker",
    "decode": "decode",
    "segment": "inference",
    "locate": "locate",
    "to_hub": "to_hub",
    "decide": "decide",
    "emit": "emit",
}
LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
STAGE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class StateCollector(Collector):
    """The `FollowerState`'s counters and mode, read at scrape time."""

    def __init__(self, state: FollowerState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        """One family per counter, the rejections by reason, and the following, candidates and status gauges."""
        counts = self.state.counts
        for name, (key, documentation) in STATE_COUNTERS.items():
            yield CounterMetricFamily(name, documentation, value=counts[key])
        rejected = CounterMetricFamily(
            "follower_frames_rejected_total", "Frames that failed validation, by kind.", labels=["reason"]
        )
        for reason, count in sorted(self.state.rejections.items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield GaugeMetricFamily(
            "follower_following",
            "1 while the drone is told to follow the target, 0 while it patrols.",
            value=int(self.state.mode is Mode.FOLLOW),
        )
        yield GaugeMetricFamily(
            "follower_candidates", "Unconfirmed candidate targets now.", value=len(self.state.tracker.candidates)
        )
        status = GaugeMetricFamily(
            "follower_tracker_status", "1 for what the tracker made of the last frame, 0 otherwise.", labels=["status"]
        )
        last = self.state.last_decision.status if self.state.last_decision else Status.IDLE
        for value in Status:
            status.add_metric([value.value], int(value is last))
        yield status


class FollowerMetrics:
    """A registry holding one follower's metrics; `observe` records each processed frame's latencies."""

    def __init__(self, state: FollowerState) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(state))
        self.latency = Histogram(
            "follower_latency_seconds",
            "Seconds from a frame's arrival to the follower's decision on it, waiting included.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        stages = Histogram(
            "follower_stage_seconds",
            "Seconds spent in each pipeline stage per processed frame.",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=self.registry,
        )
        self._stages = {key: stages.labels(stage=label) for key, label in STAGES.items()}

    def observe(self, stage_seconds: Mapping[str, float], latency_s: float) -> None:
        """Record one processed frame: its latency (arrival to decision) and the seconds of each stage it timed
        (keys of `STAGES`)."""
        self.latency.observe(latency_s)
        for key, seconds in stage_seconds.items():
            self._stages[key].observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


def blueprint(metrics: FollowerMetrics) -> flask.Blueprint:
    """A Flask blueprint serving ``GET /metrics``."""
    routes = flask.Blueprint("metrics", __name__)

    @routes.get("/metrics")
    def _handle_metrics() -> flask.Response:
        return flask.Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

    return routes
