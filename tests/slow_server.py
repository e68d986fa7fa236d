"""``python -m slow_server SECONDS [follower flags]``: the real follower server with a deliberately slow network,
so a test can send frames faster than they are processed.

The network sleeps SECONDS per frame, then calls strongly red pixels the target (the scenes of
`follower_helpers.render_frame`).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from follower_helpers import serve_stand_in


class SlowRedSegmenter:
    """Target probabilities (H, W): 1 on strongly red pixels, after sleeping ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        red = (rgb[..., 0] > 180) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
        return red.astype(np.float32)


def main() -> int:
    return serve_stand_in(lambda argument: SlowRedSegmenter(float(argument)), "a slow network")


if __name__ == "__main__":
    sys.exit(main())
