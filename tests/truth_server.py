"""``python -m truth_server FLIGHT [follower flags]``: the real follower server, its network replaced by the
truth masks of a synthetic flight, so a replay checks the geometry, the timing and the sockets, not a model.

A frame's image is recognised by the hash of its decoded pixels; an image the flight does not hold is all
background.
"""

from __future__ import annotations

import hashlib
import logging
import sys

import numpy as np

from follower import config as config_module
from follower.serve import LOG_FORMAT, _serve
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
    import eventlet

    from follower.server import FollowerServer

    args, config = config_module.parse_args(sys.argv[1:])  # the positional argument is the flight
    logging.basicConfig(level=config["LOG_LEVEL"], format=LOG_FORMAT, stream=sys.stderr)
    server = FollowerServer(TruthSegmenter(read_flight(args.weights)), config, {"model": "truth masks"})
    listener = eventlet.listen((config["HOST"], config["PORT"]))
    logging.getLogger("follower").info("Serving truth masks; waiting for the simulator")
    return _serve(server, listener)


if __name__ == "__main__":
    sys.exit(main())
