"""``python -m slow_server SECONDS [follower flags]``: the real follower server with a deliberately slow network,
so a test can send frames faster than they are processed.

The network sleeps SECONDS per frame, then calls strongly red pixels the target (the scenes of
`follower_helpers.render_frame`).
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np

from follower import config as config_module
from follower.serve import LOG_FORMAT, _serve


class SlowRedSegmenter:
    """Target probabilities (H, W): 1 on strongly red pixels, after sleeping ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        red = (rgb[..., 0] > 180) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
        return red.astype(np.float32)


def main() -> int:
    import eventlet

    from follower.server import FollowerServer

    args, config = config_module.parse_args(sys.argv[1:])  # the positional argument is the delay
    logging.basicConfig(level=config["LOG_LEVEL"], format=LOG_FORMAT, stream=sys.stderr)
    server = FollowerServer(SlowRedSegmenter(float(args.weights)), config, {"model": "slow red pixels"})
    listener = eventlet.listen((config["HOST"], config["PORT"]))
    logging.getLogger("follower").info("Serving a slow network; waiting for the simulator")
    return _serve(server, listener)


if __name__ == "__main__":
    sys.exit(main())
