"""The 2017 follower's approach, for comparison only: Keras ``model.predict()`` per frame, on the socket hub.

    python -m benchmarks.naive_server MODEL [--port P] [follower flags]

python-socketio on eventlet, like the follower, and the same decode and locate code
(`follower.pipeline.process_frame`), deciding frame by frame as the 2017 follower did
(`follower.tracking.FrameTracker`, the follower's ``--tracker none``, answered by `follower.answers`): only the
inference call and where it runs
differ. The
handler runs on the hub and calls ``model.predict()`` on each frame as it comes, so frames that arrive meanwhile
wait in the socket's buffer (nothing is dropped). `follower.server.SimulatorServer` is reused so that the
simulator's client, which never sends CONNECT, is served at all. Not part of the product.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from follower import config as config_module
from follower.serve import LOG_FORMAT

logger = logging.getLogger("follower")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until killed; returns the exit status."""
    args, config = config_module.parse_args(argv)
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT, stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet
    import eventlet.wsgi
    import socketio

    import models
    from follower.answers import Answerer
    from follower.pipeline import Settings, process_frame
    from follower.server import MAX_MESSAGE_BYTES, SimulatorServer
    from follower.tracking import FrameTracker
    from models.imaging import prepare_input
    from sim_bridge.protocol import SENSOR_FRAME, ProtocolError

    model, card = models.load(args.weights)
    size = card["input_size"]
    settings = Settings.from_config(config)
    tracker = FrameTracker(config.lost_after)
    answerer = Answerer()

    def segment(rgb: np.ndarray) -> np.ndarray:
        return model.predict(prepare_input(rgb, size)[np.newaxis], verbose=0)[0]

    segment(np.zeros((size, size, 3), np.uint8))  # the 2017 follower's first frame paid this; ours warms up too
    sio = SimulatorServer(
        async_mode="eventlet",
        ping_interval=config.ping_interval,
        ping_timeout=config.ping_timeout,
        max_http_buffer_size=MAX_MESSAGE_BYTES,
        report_packet=lambda sid, kind, detail: logger.warning("Dropped a packet from %s: %s: %s", sid, kind, detail),
    )

    def handle_sensor_frame(sid: str, message: Any = None, *_extra: Any) -> None:
        try:
            result = process_frame(message, segment, settings)
        except ProtocolError as error:
            logger.warning("Rejected sensor_frame from %s: %s", sid, error)
            return
        for event in answerer.answer(tracker.update(result.detection, result.frame.timestamp)):
            sio.emit(event.name, event.data, to=sid)

    sio.on(SENSOR_FRAME, handle_sensor_frame)
    listener = eventlet.listen((config.host, config.port))
    logger.info("Serving %s naively on http://%s:%d; waiting for the simulator", args.weights, *listener.getsockname())
    eventlet.wsgi.server(listener, socketio.WSGIApp(sio), log_output=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
