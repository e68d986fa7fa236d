"""``python -m truth_server FLIGHT [follower flags]``: the real follower server, its network replaced by the
truth masks of a synthetic flight, so a replay checks the geometry, the timing and the sockets, not a model.

A frame's image is recognised by the hash of its decoded pixels; an image the flight does not hold is all
background.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np
from follower_helpers import serve_stand_in

from sim_bridge.flight import Flight, read_flight
from sim_bridge.protocol import decode_base64, decode_rgb


class TruthSegmenter:
    """Target probabilities (H, W): 1 on the truth mask's target pixels of the frame with the same image."""

    def __init__(self, flight: Flight) -> None:
        self.masks = {
            self.key(decode_rgb(decode_base64(frame.data["rgb_image"], "rgb_image"))): frame.truth.mask
            for frame in flight.frames
        }
        self.size = next(iter(self.masks.values())).shape

    @staticmethod
    def key(rgb: np.ndarray) -> bytes:
        return hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).digest()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        mask = self.masks.get(self.key(rgb))
        return np.zeros(self.size, np.float32) if mask is None else (mask == 2).astype(np.float32)


def main() -> int:
    return serve_stand_in(lambda argument: TruthSegmenter(read_flight(argument)), "truth masks")


if __name__ == "__main__":
    sys.exit(main())
