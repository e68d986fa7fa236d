"""The live page in a real headless Chromium, the follower driven like the simulator drives it; and
``GET /metrics`` of that same server, parsed back.

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or the path in ``$CHROMIUM``) and the ``playwright`` Python
package; Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from follower_helpers import ServerProcess, SimulatorClient, save_red_model, sensor_frame
from prometheus_client.parser import text_string_to_metric_families

from sim_bridge.geometry import Pose

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FRAME_PERIOD_S = 0.2  # the simulator sends about 5 frames per second
WAIT_MS = 15_000

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="the playwright package is absent (pip install playwright)"),
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


class Flight(threading.Thread):
    """Sends a frame every `FRAME_PERIOD_S`, the drone moving along x; the target 9 m ahead once `show_target`."""

    def __init__(self, client: SimulatorClient) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.show_target = False
        self.stopped = threading.Event()

    def run(self) -> None:
        step = 0
        while not self.stopped.is_set():
            pose = Pose(0.5 * step, 0.1 * step, 10.0, 0.0, 45.0, 0.0)
            target = pose.position + np.array([9.0, 0.5, -9.1]) if self.show_target else None
            self.client.emit("sensor_frame", sensor_frame(pose, target))
            step += 1
            self.stopped.wait(FRAME_PERIOD_S)


def scrape(url: str) -> dict:
    """``GET /metrics`` parsed: {sample name: value} for unlabelled samples, {(name, labels): value} otherwise."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items()))) if sample.labels else sample.name
            samples[key] = sample.value
    return samples


def test_live_page_follows_the_flight_in_chromium(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)  # --pred-viz must not try to open a browser here
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    server = ServerProcess(save_red_model(tmp_path / "red"), "--pred-viz")
    client = flight = None
    try:
        server.wait_for_line("waiting for the simulator")
        assert server.wait_for_line("Live view: ").endswith(f"Live view: http://127.0.0.1:{server.port}/")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 820})
            page.goto(server.url + "/")
            waiting = page.locator("#waiting")
            page.wait_for_function("document.getElementById('waiting').textContent.includes('port')", timeout=WAIT_MS)
            assert waiting.text_content() == f"waiting for the simulator on port {server.port}"
            assert waiting.is_visible() and page.locator("#mode").text_content() == "PATROL"

            client = SimulatorClient(server.port)
            flight = Flight(client)
            flight.start()
            page.wait_for_function("Number(document.getElementById('overlay').dataset.seq) > 0", timeout=WAIT_MS)
            assert not waiting.is_visible() and page.locator("#mode").text_content() == "PATROL"
            seq = int(page.locator("#overlay").get_attribute("data-seq"))
            page.wait_for_function(
                f"Number(document.getElementById('overlay').dataset.seq) > {seq}", timeout=WAIT_MS
            )  # the overlay keeps updating without a reload
            patrol_overlay = page.locator("#overlay").get_attribute("src")
            assert patrol_overlay.startswith("data:image/jpeg;base64,")
            client.emit("sensor_frame", {**sensor_frame(Pose(0, 0, 10, 0, 45, 0), None), "gimbal_pose": "1,2"})
            page.wait_for_function(
                "document.getElementById('last-rejection').textContent.includes('gimbal_pose')", timeout=WAIT_MS
            )
            assert page.locator("#rejected").text_content() == "1"

            flight.show_target = True
            page.wait_for_function("document.getElementById('mode').textContent === 'FOLLOW'", timeout=WAIT_MS)
            page.wait_for_function(
                "document.getElementById('overlay').src !== " + repr(patrol_overlay), timeout=WAIT_MS
            )
            page.wait_for_timeout(1500)  # a few more frames, for the plot
            assert page.locator("#target").text_content().endswith(" m")
            assert float(page.locator("#fps").text_content()) > 0
            assert "/" in page.locator("#latency").text_content()
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            second = SimulatorClient(server.port)  # a second simulator, patrolling: the latest, so the one shown
            second.emit("sensor_frame", sensor_frame(Pose(50, 0, 10, 0, 45, 0), None))
            page.wait_for_function("document.querySelectorAll('#connections li').length === 2", timeout=WAIT_MS)
            page.wait_for_function("document.getElementById('mode').textContent === 'PATROL'", timeout=WAIT_MS)
            assert page.locator("#connections li.main").get_attribute("data-sid") == server.health()["main_connection"]
            page.locator("#connections li").first.click()  # the first simulator again, still following
            page.wait_for_function("document.getElementById('mode').textContent === 'FOLLOW'", timeout=WAIT_MS)
            assert "?connection=" in page.url and page.locator("#connections li").first.get_attribute("class") == "main"
            second.close()
            browser.close()
        assert (tmp_path / "dashboard.png").stat().st_size > 20_000
        flight.stopped.set()
        flight.join(5)
        health = server.health()
        server.wait_processed(health["frames_received"] - health["frames_dropped"])

        metrics = scrape(server.url)
        assert metrics["follower_following"] == 1.0 and metrics["follower_target_found_total"] == 1.0
        assert metrics["follower_connections"] == 1.0  # the second simulator went away
        assert metrics["follower_frames_total"] >= metrics["follower_frames_processed_total"] > 5
        assert metrics["follower_detections_total"] >= 1
        assert metrics[("follower_frames_rejected_total", (("reason", "number_format"),))] == 1.0
        assert metrics["follower_latency_seconds_count"] == metrics["follower_frames_processed_total"]
        for stage in ("queue", "to_worker", "decode", "inference", "locate", "to_hub", "decide", "emit"):
            assert metrics[("follower_stage_seconds_count", (("stage", stage),))] >= 5
        assert server.health()["status"] == "ok"
    finally:
        if flight is not None:
            flight.stopped.set()
            flight.join(5)
        if client is not None:
            client.close()
        server.stop()
