"""``GET /metrics``: the follower's counters and latencies in Prometheus' text format.

Each server has its own `prometheus_client.CollectorRegistry`, so several can live in one process. Counters
and modes are read from the `Connections` when scraped (nothing is counted twice, and the frame path pays
nothing for them); the latency histograms are observed once per processed frame. Every series is
process-wide: counters add up all connections, closed ones included, and the gauges count connections. No
series is labelled by connection: session ids are new at every reconnection, so such labels would grow without
bound; `GET /healthz` and the live page list the connections instead.

Exported: ``follower_frames_total`` (sensor frames received), ``follower_frames_processed_total``,
``follower_frames_dropped_total``, ``follower_frames_rejected_total{reason}``,
``follower_frames_failed_total``, ``follower_detections_total``, ``follower_target_found_total``,
``follower_target_lost_total``, ``follower_following`` (connections in FOLLOW: 1 or 0 with one simulator),
``follower_connections`` (simulators connected), ``follower_connections_refused_total`` (beyond
--max-connections); the tracker's
``follower_candidate_frames_total`` (detections held back as unconfirmed candidates while patrolling),
``follower_track_misses_total`` (detections outside the followed target's gate),
``follower_coasting_frames_total`` (predicted positions sent), ``follower_target_switches_total`` (a target
confirmed elsewhere replaced the followed one, unseen meanwhile), ``follower_candidates`` (unconfirmed candidates
now) and ``follower_tracker_status{status}`` (connections whose last frame had that status); and the
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

from follower.connections import Connections
from follower.tracking import Status

# Counter name → (`Totals.counts` key, help text).
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
    """The connections' counters and modes, read at scrape time."""

    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    def collect(self) -> Iterator[Metric]:
        """One family per counter, the rejections by reason, and the connection, following, candidates and
        status gauges."""
        totals, states = self.connections.totals, [state for _, state in self.connections]
        for name, (key, documentation) in STATE_COUNTERS.items():
            yield CounterMetricFamily(name, documentation, value=totals.counts[key])
        rejected = CounterMetricFamily(
            "follower_frames_rejected_total", "Frames that failed validation, by kind.", labels=["reason"]
        )
        for reason, count in sorted(totals.rejections.items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield CounterMetricFamily(
            "follower_connections_refused_total",
            "Simulator connections refused because --max-connections were served.",
            value=self.connections.refused,
        )
        yield GaugeMetricFamily("follower_connections", "Simulator connections now.", value=len(states))
        yield GaugeMetricFamily(
            "follower_following",
            "Connections whose drone is told to follow the target (1 or 0 with one simulator).",
            value=self.connections.following(),
        )
        yield GaugeMetricFamily(
            "follower_candidates",
            "Unconfirmed candidate targets now, over every connection.",
            value=sum(len(state.tracker.candidates) for state in states),
        )
        status = GaugeMetricFamily(
            "follower_tracker_status",
            "Connections for which the tracker made this of their last frame.",
            labels=["status"],
        )
        last = [state.last_decision.status if state.last_decision else Status.IDLE for state in states]
        for value in Status:
            status.add_metric([value.value], last.count(value))
        yield status


class FollowerMetrics:
    """A registry holding the follower's metrics; `observe` records each processed frame's latencies."""

    def __init__(self, connections: Connections) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(connections))
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
