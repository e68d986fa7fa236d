"""``python -m world_truth_server DIR [follower flags]``: the real follower server, its network replaced by the
truth masks of a closed-loop flight (`sim_bridge.fly`), so a flight checks the loop's logic, not a model.

The flight's observer (`MaskFolder.observe`) writes each frame's truth mask into DIR before the frame is sent,
named by the hash of the frame's decoded image; the segmenter reads it back by the same hash. An image without a
mask is all background.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from follower_helpers import serve_stand_in
from truth_server import TruthSegmenter

from sim_bridge.protocol import decode_base64, decode_rgb
from sim_bridge.render import View
from sim_bridge.synth import IMAGE_SIZE, TARGET


class MaskFolder:
    """Truth masks by image hash in a folder: written by the flight, read by the server."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, rgb: np.ndarray) -> Path:
        return self.folder / f"{TruthSegmenter.key(rgb).hex()}.png"

    def observe(self, payload: dict, view: View) -> None:
        """A `sim_bridge.fly` observer: keep the frame's truth mask under the hash of the image as sent."""
        rgb = decode_rgb(decode_base64(payload["rgb_image"], "rgb_image"))
        cv2.imwrite(str(self.path(rgb)), view.truth.mask)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Target probabilities (H, W): 1 on the truth mask's hero pixels."""
        mask = cv2.imread(str(self.path(rgb)), cv2.IMREAD_UNCHANGED)
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32) if mask is None else (mask == TARGET).astype(np.float32)


def main() -> int:
    return serve_stand_in(MaskFolder, "flight truth masks")


if __name__ == "__main__":
    sys.exit(main())
