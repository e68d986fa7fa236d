"""Regenerate ``docs/dashboard.png``: the live page in headless Chromium while the follower, serving the shipped
model, is fed a run of real validation images as the simulator would send them.

    PYTHONPATH=. python docs/dashboard_screenshot.py [--weights weights/model_weights]
        [--images ../shared/followme_data/validation/images] [--last 5_run6cam1_00138.jpeg] [--out docs/dashboard.png]

The frames are the ``--count`` images of ``--last``'s run up to ``--last``, sent 5 per second; the depth image
is a flat 14 m and the drone flies a gentle arc, so the plotted positions are illustrative. Needs what the
browser test needs: Debian's ``chromium`` and the ``playwright`` package.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import socketio
from PIL import Image
from playwright.sync_api import sync_playwright

from benchmarks.servers import ServerProcess
from sim_bridge.geometry import Pose
from sim_bridge.protocol import build_sensor_frame

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
FRAME_PERIOD_S = 0.2
DEPTH_M = 14.0


def flight_pose(step: int) -> Pose:
    """The drone's pose at a step of the illustrative arc: 10 m up, camera 45° down, heading along the arc."""
    x, y = 0.8 * step, 6.0 * math.sin(step / 12)
    yaw = math.degrees(math.atan2(0.5 * math.cos(step / 12), 0.8))
    return Pose(x, y, 10.0, 0.0, 45.0, yaw)


def main(argv: list[str] | None = None) -> int:
    """Feed the frames, take the screenshot; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights" / "model_weights"))
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared/followme_data/validation/images")
    parser.add_argument("--last", default="5_run6cam1_00138.jpeg", help="the frame on screen when the shot is taken")
    parser.add_argument("--count", type=int, default=40, help="frames sent, the last one included")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)

    run = sorted(args.images.glob(args.last.split("cam1_")[0] + "cam1_*.jpeg"))
    names = [path.name for path in run]
    if args.last not in names:
        parser.error(f"--last must name an image in {args.images}. Received: --last={args.last!r}")
    frames = run[max(0, names.index(args.last) + 1 - args.count) : names.index(args.last) + 1]

    server = ServerProcess(args.weights)
    url = server.url
    client = socketio.Client()
    try:
        server.wait_listening()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(url + "/")
            client.connect(url, wait_timeout=10)
            for step, path in enumerate(frames):
                rgb = np.asarray(Image.open(path).convert("RGB"))
                depth = np.full(rgb.shape[:2], DEPTH_M, np.float32)
                pose = flight_pose(step)
                client.emit("sensor_frame", build_sensor_frame(time.time(), pose, pose, rgb, depth))
                time.sleep(FRAME_PERIOD_S)
            page.wait_for_timeout(1500)  # the last frame's overlay reaches the page
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
        print(f"Wrote {args.out} ({len(frames)} frames from {frames[0].name} to {frames[-1].name})")
    finally:
        if client.connected:
            client.disconnect()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
