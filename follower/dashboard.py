"""The live page at ``GET /``: what the drones see and what their followers decide.

The server hands every processed frame to `Dashboard.observe` with its connection, which only keeps a
reference to it and appends to that connection's two short windows (recent latencies, and the last minute of
drone positions, target positions sent and detections). Everything else happens only while a page is open:
each open page holds a server-sent event stream (``GET /dashboard/events``) that sends, `UPDATE_INTERVAL_S`
apart, the list of connections (mode, tracker status, frames, latency) and the main connection's state and,
when a newer frame is there, its frame and overlay as JPEG data URLs. The main connection is the one the page
asks for (``?connection=SID``) while it is connected, else the one that connected last. Frames are rendered and
encoded off the socket hub, at most once per `FRAME_INTERVAL_S` per connection whatever the number of pages,
and shared between them.

Routes: ``GET /`` (the page, ``follower/static/dashboard.html``), ``GET /dashboard/events`` (the stream),
``GET /dashboard/state`` (one snapshot as JSON, what each event carries besides the images); both take
``?connection=SID``.
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

from follower.connections import Connections
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


class ConnectionView:
    """What the page shows of one connection: its newest frame (a reference), recent latencies, the last
    minute of positions, and the newest frame's images once encoded."""

    def __init__(self) -> None:
        self.latest: FrameResult | None = None
        self.seq = 0
        self.first_at: float | None = None
        self.latencies: deque[tuple[float, float]] = deque()
        self.track: deque[tuple[float, float, float, Point | None, Point | None]] = deque()  # t, drone x, y, sent, seen
        self.images: dict[str, Any] | None = None
        self.encoded_at = -np.inf
        self.rendering = False

    def observe(self, now: float, state: FollowerState, result: FrameResult) -> None:
        """Keep a processed frame and the follower's decision on it."""
        if self.first_at is None:
            self.first_at = now
        self.latest, self.seq = result, self.seq + 1
        if state.last_latency_s is not None:
            self.latencies.append((now, state.last_latency_s))
        drone = result.frame.pose
        decision = state.last_decision
        sent = None if decision is None or decision.position is None else decision.position[:2]
        detected = None if result.detection is None else tuple(result.detection.position[:2].tolist())
        self.track.append((now, drone.x, drone.y, sent, detected))
        self.prune(now)

    def prune(self, now: float) -> None:
        """Forget latencies older than `RATE_WINDOW_S` and positions older than `TRACK_S`."""
        while self.latencies and self.latencies[0][0] < now - RATE_WINDOW_S:
            self.latencies.popleft()
        while self.track and self.track[0][0] < now - TRACK_S:
            self.track.popleft()

    def latency_ms(self) -> dict[str, float] | None:
        """p50 and p95 of the recent latencies, in milliseconds, or None."""
        if not self.latencies:
            return None
        p50, p95 = np.percentile(np.array([latency for _, latency in self.latencies]) * 1000.0, [50, 95])
        return {"p50": round(float(p50), 1), "p95": round(float(p95), 1)}

    def fps(self, now: float) -> float:
        """Frames processed per second over the recent window."""
        span = 0.0 if self.first_at is None else min(RATE_WINDOW_S, now - self.first_at)
        return round(len(self.latencies) / span, 1) if span > 0 else 0.0


class Dashboard:
    """What the page shows, gathered from processed frames and the connections' followers.

    ``sleep`` pauses a stream between events (the server's cooperative sleep); ``offload(fn, *args)`` runs
    the rendering off the hub (eventlet's ``tpool.execute`` in the server). Time comes from the connections'
    clock.
    """

    def __init__(
        self,
        connections: Connections,
        port: int,
        threshold: float,
        sleep: Callable[[float], Any] = time.sleep,
        offload: Offload = lambda fn, *args: fn(*args),
    ) -> None:
        self.connections = connections
        self.port = port
        self.threshold = threshold
        self.sleep = sleep
        self.offload = offload
        self.viewers = 0
        self.closed = False
        self._views: dict[str, ConnectionView] = {}

    def observe(self, sid: str, state: FollowerState, result: FrameResult) -> None:
        """Keep a processed frame of connection ``sid`` for the page (a reference, nothing is copied or encoded
        here), with its follower's decision on it."""
        self._views.setdefault(sid, ConnectionView()).observe(self.connections.clock(), state, result)

    def forget(self, sid: str) -> None:
        """Drop a closed connection's frames and windows."""
        self._views.pop(sid, None)

    def snapshot(self, sid: str | None = None) -> dict[str, Any]:
        """Every connection in brief and the main one's state (``sid`` when connected), JSON-ready."""
        now = self.connections.clock()
        main = self.connections.main(sid)
        connections = []
        for each, state in self.connections:
            view = self._view(each, now)
            connections.append({
                "sid": each, "mode": state.mode.value, "tracker_status": _status(state),
                "frames": state.counts["received"], "latency_ms": view.latency_ms(),
            })  # fmt: skip
        snapshot = {"port": self.port, "connections": connections, "connection": None if main is None else main[0]}
        if main is None:
            return {**snapshot, **self._idle()}
        main_sid, state = main
        view = self._view(main_sid, now)
        counts = state.counts
        decision = state.last_decision
        return {
            **snapshot,
            "waiting": state.last_frame_at is None,
            "mode": state.mode.value,
            "mode_for_s": round(now - state.mode_since, 1),
            "target": state.last_position,
            "fps": view.fps(now),
            "latency_ms": view.latency_ms(),
            "frames": counts["received"],
            "processed": counts["processed"],
            "dropped": counts["dropped"],
            "rejected": counts["rejected"],
            "last_rejection": state.last_rejection,
            "tracker": {
                "name": state.tracker.name,
                "status": _status(state),
                "misses": 0 if decision is None else decision.misses,
                "candidates": [
                    {"position": [round(c, 2) for c in candidate.position], "hits": candidate.hits}
                    for candidate in state.tracker.candidates
                ],
                "candidate_frames": counts["candidate_frames"],
                "track_misses": counts["track_misses"],
                "coasting_frames": counts["coasting_frames"],
            },
            "track": {
                "drone": [_rounded((x, y)) for _, x, y, *_ in view.track],
                "targets": [_rounded(sent) for *_, sent, _ in view.track if sent is not None],
                "detections": [_rounded(seen) for *_, seen in view.track if seen is not None],
            },
        }

    def _idle(self) -> dict[str, Any]:
        """The main view's state while no simulator is connected."""
        return {
            "waiting": True, "mode": "PATROL", "mode_for_s": 0.0, "target": None, "fps": 0.0, "latency_ms": None,
            "frames": 0, "processed": 0, "dropped": 0, "rejected": 0, "last_rejection": None,
            "tracker": {"name": self.connections.tracker_name, "status": "idle", "misses": 0, "candidates": [],
                        "candidate_frames": 0, "track_misses": 0, "coasting_frames": 0},
            "track": {"drone": [], "targets": [], "detections": []},
        }  # fmt: skip

    def _view(self, sid: str, now: float) -> ConnectionView:
        """Connection ``sid``'s view, its windows pruned to ``now``."""
        view = self._views.setdefault(sid, ConnectionView())
        view.prune(now)
        return view

    def frame_images(self, sid: str | None = None) -> dict[str, Any] | None:
        """The main connection's newest frame's images with its connection ``sid`` and sequence number ``seq``;
        re-rendered only for a newer frame, at most once per `FRAME_INTERVAL_S`, and by one stream at a time (the
        others get the previous ones)."""
        main = self.connections.main(sid)
        if main is None:
            return None
        connection = main[0]
        view = self._views.get(connection)
        if view is None:
            return None
        latest, seq, cached = view.latest, view.seq, view.images
        if latest is None or view.rendering:
            return cached
        now = self.connections.clock()
        if cached is not None and (cached["seq"] == seq or now - view.encoded_at < FRAME_INTERVAL_S):
            return cached
        view.rendering = True
        try:
            images = self.offload(encode_frame, latest, self.threshold)
        finally:
            view.rendering = False
        view.images, view.encoded_at = {"connection": connection, "seq": seq, **images}, self.connections.clock()
        return view.images

    def stream(self, sid: str | None = None) -> Iterator[str]:
        """Server-sent events for one open page until it goes away or `close` is called: a snapshot each
        `UPDATE_INTERVAL_S`, with ``frame`` (`frame_images`) when a newer frame was rendered."""
        self.viewers += 1
        sent = None
        try:
            while not self.closed:
                message = self.snapshot(sid)
                images = self.frame_images(sid)
                if images is not None and (images["connection"], images["seq"]) != sent:
                    message["frame"], sent = images, (images["connection"], images["seq"])
                yield f"data: {json.dumps(message)}\n\n"
                self.sleep(UPDATE_INTERVAL_S)
        finally:
            self.viewers -= 1

    def close(self) -> None:
        """End every open stream (at shutdown), within one `UPDATE_INTERVAL_S`."""
        self.closed = True


def _status(state: FollowerState) -> str:
    """What the tracker made of the connection's last frame."""
    return "idle" if state.last_decision is None else state.last_decision.status.value


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
        stream = dashboard.stream(flask.request.args.get("connection"))
        return flask.Response(stream, mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})

    @routes.get("/dashboard/state")
    def _handle_state() -> flask.Response:
        return flask.jsonify(dashboard.snapshot(flask.request.args.get("connection")))

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
