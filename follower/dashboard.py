"""The live page at ``GET /``: what the drone sees and what the follower decides.

The server hands every processed frame to `Dashboard.observe`, which only keeps a reference to it and appends
to two short windows (recent latencies, and the last minute of drone positions, target positions sent and
detections). Everything else
happens only while a page is open: each open page holds a server-sent event stream
(``GET /dashboard/events``) that sends the follower's state `UPDATE_INTERVAL_S` apart and, when a newer frame
is there, the frame and its overlay as JPEG data URLs. Frames are rendered and encoded off the socket hub, at
most once per `FRAME_INTERVAL_S` whatever the number of pages, and shared between them.

Routes: ``GET /`` (the page, ``follower/static/dashboard.html``), ``GET /dashboard/events`` (the stream),
``GET /dashboard/state`` (one snapshot as JSON, what each event carries besides the images).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import threading
import time
import webbrowser
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import flask
import numpy as np

from follower.pipeline import FrameResult, class_map, largest_blob
from follower.state import FollowerState
from models.imaging import PEOPLE_CLASS, TARGET_CLASS
from sim_bridge.geometry import scale_pixel

logger = logging.getLogger("follower")

UPDATE_INTERVAL_S = 0.25
FRAME_INTERVAL_S = 0.25
TRACK_S = 60.0
RATE_WINDOW_S = 10.0
JPEG_QUALITY = 80
OVERLAY_ALPHA = 0.55
CLASS_COLOURS_RGB = {PEOPLE_CLASS: (0, 230, 60), TARGET_CLASS: (30, 80, 255)}
OUTLINE_RGB = (255, 230, 0)
CENTROID_RGB = (255, 40, 40)

Offload = Callable[..., Any]
Point = tuple[float, float]


def render_overlay(result: FrameResult, threshold: float) -> np.ndarray:
    """The frame's RGB (H, W, 3) uint8 with the classes blended in (target blue, other people green), the
    outline of the target's largest blob, and a cross at the located centroid."""
    image = result.frame.rgb.copy()
    if result.segmentation is None:
        return image
    height, width = image.shape[:2]
    classes = class_map(result.segmentation, threshold)
    full = cv2.resize(classes, (width, height), interpolation=cv2.INTER_NEAREST)
    for cls, colour in CLASS_COLOURS_RGB.items():
        where = full == cls
        image[where] = (image[where] * (1 - OVERLAY_ALPHA) + np.array(colour) * OVERLAY_ALPHA).astype(np.uint8)
    blob = largest_blob(classes == TARGET_CLASS)
    if blob is not None:
        blob_mask = cv2.resize(blob.mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(blob_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(image, contours, -1, OUTLINE_RGB, 1)
    if result.detection is not None:
        depth_height, depth_width = result.frame.depth_m.shape
        u, v = scale_pixel(result.detection.centroid, (depth_width, depth_height), (width, height))
        cv2.drawMarker(image, (round(u), round(v)), CENTROID_RGB, cv2.MARKER_CROSS, 14, 2)
    return image


def jpeg_data_url(rgb: np.ndarray) -> str:
    """An RGB uint8 image as a ``data:image/jpeg;base64,...`` URL."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {rgb.shape}")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def encode_frame(result: FrameResult, threshold: float) -> dict[str, str]:
    """The page's two images of one frame: ``overlay`` and ``raw``, as JPEG data URLs."""
    return {"overlay": jpeg_data_url(render_overlay(result, threshold)), "raw": jpeg_data_url(result.frame.rgb)}


class Dashboard:
    """What the page shows, gathered from processed frames and the `FollowerState`.

    ``sleep`` pauses a stream between events (the server's cooperative sleep); ``offload(fn, *args)`` runs
    the rendering off the hub (eventlet's ``tpool.execute`` in the server). Time comes from the state's clock.
    """

    def __init__(
        self,
        state: FollowerState,
        port: int,
        threshold: float,
        sleep: Callable[[float], Any] = time.sleep,
        offload: Offload = lambda fn, *args: fn(*args),
    ) -> None:
        self.state = state
        self.port = port
        self.threshold = threshold
        self.sleep = sleep
        self.offload = offload
        self.viewers = 0
        self.closed = False
        self._latest: FrameResult | None = None
        self._seq = 0
        self._first_at: float | None = None
        self._latencies: deque[tuple[float, float]] = deque()
        self._track: deque[tuple[float, float, float, Point | None, Point | None]] = (
            deque()
        )  # t, drone x, y, sent, seen
        self._images: dict[str, Any] | None = None
        self._encoded_at = -np.inf
        self._rendering = False

    def observe(self, result: FrameResult, latency_s: float) -> None:
        """Keep a processed frame for the page (a reference, nothing is copied or encoded here), with the
        state's decision on it."""
        now = self.state.clock()
        if self._first_at is None:
            self._first_at = now
        self._latest, self._seq = result, self._seq + 1
        self._latencies.append((now, latency_s))
        drone = result.frame.pose
        decision = self.state.last_decision
        sent = None if decision is None or decision.position is None else decision.position[:2]
        detected = None if result.detection is None else tuple(result.detection.position[:2].tolist())
        self._track.append((now, drone.x, drone.y, sent, detected))
        self._prune(now)

    def snapshot(self) -> dict[str, Any]:
        """The follower's state for the page, JSON-ready."""
        now = self.state.clock()
        self._prune(now)
        counts = self.state.counts
        latencies = [latency for _, latency in self._latencies]
        latency_ms = None
        if latencies:
            p50, p95 = np.percentile(np.array(latencies) * 1000.0, [50, 95])
            latency_ms = {"p50": round(float(p50), 1), "p95": round(float(p95), 1)}
        span = 0.0 if self._first_at is None else min(RATE_WINDOW_S, now - self._first_at)
        decision = self.state.last_decision
        return {
            "port": self.port,
            "waiting": self.state.last_frame_at is None,
            "mode": self.state.mode.value,
            "mode_for_s": round(now - self.state.mode_since, 1),
            "target": self.state.last_position,
            "fps": round(len(latencies) / span, 1) if span > 0 else 0.0,
            "latency_ms": latency_ms,
            "frames": counts["received"],
            "processed": counts["processed"],
            "dropped": counts["dropped"],
            "rejected": counts["rejected"],
            "last_rejection": self.state.last_rejection,
            "tracker": {
                "name": self.state.tracker.name,
                "status": "idle" if decision is None else decision.status.value,
                "misses": 0 if decision is None else decision.misses,
                "candidates": [
                    {"position": [round(c, 2) for c in candidate.position], "hits": candidate.hits}
                    for candidate in self.state.tracker.candidates
                ],
                "candidate_frames": counts["candidate_frames"],
                "track_misses": counts["track_misses"],
                "coasting_frames": counts["coasting_frames"],
            },
            "track": {
                "drone": [_rounded((x, y)) for _, x, y, *_ in self._track],
                "targets": [_rounded(sent) for *_, sent, _ in self._track if sent is not None],
                "detections": [_rounded(seen) for *_, seen in self._track if seen is not None],
            },
        }

    def frame_images(self) -> dict[str, Any] | None:
        """The newest frame's images with its sequence number ``seq``; re-rendered only for a newer frame, at
        most once per `FRAME_INTERVAL_S`, and by one stream at a time (the others get the previous ones)."""
        latest, seq, cached = self._latest, self._seq, self._images
        if latest is None or self._rendering:
            return cached
        if cached is not None and (cached["seq"] == seq or self.state.clock() - self._encoded_at < FRAME_INTERVAL_S):
            return cached
        self._rendering = True
        try:
            images = self.offload(encode_frame, latest, self.threshold)
        finally:
            self._rendering = False
        self._images, self._encoded_at = {"seq": seq, **images}, self.state.clock()
        return self._images

    def stream(self) -> Iterator[str]:
        """Server-sent events for one open page until it goes away or `close` is called: a snapshot each
        `UPDATE_INTERVAL_S`, with ``frame`` (`frame_images`) when a newer frame was rendered."""
        self.viewers += 1
        sent = None
        try:
            while not self.closed:
                message = self.snapshot()
                images = self.frame_images()
                if images is not None and images["seq"] != sent:
                    message["frame"], sent = images, images["seq"]
                yield f"data: {json.dumps(message)}\n\n"
                self.sleep(UPDATE_INTERVAL_S)
        finally:
            self.viewers -= 1

    def close(self) -> None:
        """End every open stream (at shutdown), within one `UPDATE_INTERVAL_S`."""
        self.closed = True

    def _prune(self, now: float) -> None:
        """Forget latencies older than `RATE_WINDOW_S` and positions older than `TRACK_S`."""
        while self._latencies and self._latencies[0][0] < now - RATE_WINDOW_S:
            self._latencies.popleft()
        while self._track and self._track[0][0] < now - TRACK_S:
            self._track.popleft()


def _rounded(point: Point) -> list[float]:
    """A plotted (x, y) in metres, to the centimetre."""
    return [round(point[0], 2), round(point[1], 2)]


def blueprint(dashboard: Dashboard) -> flask.Blueprint:
    """A Flask blueprint serving the page, its static files, its event stream and its JSON snapshot."""
    routes = flask.Blueprint("dashboard", __name__, static_folder="static", static_url_path="/dashboard/static")

    @routes.get("/")
    def _handle_page() -> flask.Response:
        return routes.send_static_file("dashboard.html")

    @routes.get("/dashboard/events")
    def _handle_events() -> flask.Response:
        flask.request.environ["eventlet.minimum_write_chunk_size"] = 0  # send each event at once, unbuffered
        return flask.Response(dashboard.stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})

    @routes.get("/dashboard/state")
    def _handle_state() -> flask.Response:
        return flask.jsonify(dashboard.snapshot())

    return routes


def dashboard_url(host: str, port: int) -> str:
    """The page's address for a browser on this machine (a wildcard bind address becomes loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def show(host: str, port: int) -> str:
    """Print the page's address and open it in a graphical browser, in the background, when there is a
    display (a console browser would take over the server's terminal); returns the address."""
    url = dashboard_url(host, port)
    print(f"Live view: {url}", flush=True)
    graphical = sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if graphical:
        threading.Thread(target=webbrowser.open, args=(url,), name="open-browser", daemon=True).start()
    else:
        logger.info("No display to open a browser on: open %s yourself", url)
    return url
