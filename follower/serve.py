"""``python -m follower.serve MODEL [--host H] [--port P] ...``: run the follow-me server for the simulator.

Start-up checks run before listening, each ending with a clear error and exit status 1: the port must be
free (checked first, because loading the model takes seconds) and the model must load. SIGINT and SIGTERM
disconnect the clients and stop the server with status 0. See `follower.config` for every setting.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from follower import config as config_module

if TYPE_CHECKING:
    from follower.server import FollowerServer

logger = logging.getLogger("follower")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SHUTDOWN_GRACE_S = 2.0
SIGNAL_POLL_S = 0.1


class StartupError(Exception):
    """A condition that stops the server before it listens (busy port, unreadable model)."""


def check_port(host: str, port: int) -> None:
    """Raise StartupError when ``host:port`` cannot be bound (in use, or an address not on this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StartupError(f"Cannot listen on {host}:{port}: {error.strerror or error}") from error


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGINT or SIGTERM; returns the exit status."""
    args, config = config_module.parse_args(argv)
    logging.basicConfig(level=config["LOG_LEVEL"], format=LOG_FORMAT, stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    try:
        check_port(config["HOST"], config["PORT"])
        server, listener = _start(args.weights, config)
    except StartupError as error:
        logger.error("%s", error)
        return 1
    except KeyboardInterrupt:
        logger.info("Interrupted before serving")
        return 130
    if args.pred_viz:
        from follower import dashboard

        dashboard.show(config["HOST"], config["PORT"])
    return _serve(server, listener)


def _start(weights: str, config: dict) -> tuple[FollowerServer, socket.socket]:
    """Load the model, build the server and bind its socket; raises StartupError."""
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # printed on import otherwise
    import eventlet

    import models
    from follower.segmenter import Segmenter, set_inference_threads
    from follower.server import FollowerServer

    threads = set_inference_threads(config["INFERENCE_THREADS"])
    try:
        segmenter = Segmenter.load(weights)
    except models.ModelLoadError as error:
        raise StartupError(f"{error}") from error
    info = {
        "model": segmenter.name,
        "input_size": segmenter.input_size,
        "device": segmenter.device,
        "inference_threads": threads,
    }
    server = FollowerServer(segmenter.class_probabilities, config, info)
    try:
        listener = eventlet.listen((config["HOST"], config["PORT"]), reuse_port=False)
    except OSError as error:
        raise StartupError(f"Cannot listen on {config['HOST']}:{config['PORT']}: {error.strerror}") from error
    logger.info(
        "Serving %s (input %dx%d, %s, inference threads: %s) on http://%s:%d (ping every %g s); "
        "waiting for the simulator",
        segmenter.name, segmenter.input_size, segmenter.input_size, segmenter.device, threads or "one per core",
        config["HOST"], config["PORT"], config["PING_INTERVAL"],
    )  # fmt: skip
    return server, listener


def _serve(server: FollowerServer, listener: socket.socket) -> int:
    """Serve until SIGINT or SIGTERM, then disconnect the clients and stop; returns the exit status.

    The signal handlers only record the signal: an exception raised from them would land in whichever
    green thread happens to run, which may swallow it. The main green thread polls for it instead.
    """
    import eventlet
    import eventlet.wsgi

    received: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: received.append(signum))
    server.start_background_tasks()
    web = eventlet.spawn(eventlet.wsgi.server, listener, server.wsgi_app, log_output=False)
    while not received and not web.dead:
        eventlet.sleep(SIGNAL_POLL_S)
    status = 0
    if received:
        logger.info("Shutting down on %s: disconnecting clients", signal.Signals(received[0]).name)
    else:
        logger.error("The web server stopped unexpectedly")
        status = 1
    server.disconnect_all()
    with eventlet.Timeout(SHUTDOWN_GRACE_S, False):
        web.kill()
    listener.close()
    counts = server.state.counts
    logger.info(
        "Stopped after %d frames (%d dropped, %d rejected)",
        counts["processed"], counts["dropped"], counts["rejected"],
    )  # fmt: skip
    return status


if __name__ == "__main__":
    sys.exit(main())
