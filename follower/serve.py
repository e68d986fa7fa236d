"""``python -m follower.serve MODEL [--host H] [--port P] ...``: run the follow-me server for the simulator.

Start-up checks run before listening, each ending with a clear error and exit status 1: the port must be
free (checked first, because loading the model takes seconds) and the model must load. SIGINT and SIGTERM
disconnect the clients and stop the server with status 0, within `SHUTDOWN_GRACE_S` whatever the clients did:
past it, the process exits at once, with a line that says so. TensorFlow's C++ start-up lines (absl, oneDNN,
cpu_feature_guard) are hidden unless ``--log-level DEBUG``. See `follower.config` for every setting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from follower import config as config_module

if TYPE_CHECKING:
    from eventlet.greenthread import GreenThread

    from follower.config import FollowerConfig
    from follower.segmenter import Segmenter
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
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT, stream=sys.stderr)
    try:
        check_port(config.host, config.port)
        server, listener = _start(args.weights, config)
    except StartupError as error:
        logger.error("%s", error, exc_info=error if logger.isEnabledFor(logging.DEBUG) else None)
        return 1
    except KeyboardInterrupt:
        logger.info("Interrupted before serving")
        return 130
    if config.pred_viz:
        from follower import dashboard

        dashboard.show(config.host, config.port)
    return serve_until_stopped(server, listener)


def _start(weights: str, config: FollowerConfig) -> tuple[FollowerServer, socket.socket]:
    """Load the model, build the server and bind its socket; raises StartupError."""
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # printed on import otherwise
    # JAX takes 75 % of the GPU's memory at its start by default; the simulator may be rendering on that GPU.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import eventlet

    with quiet_tensorflow(config.log_level == "DEBUG"):
        import models
        from follower.segmenter import RuntimeUnavailableError, describe_threads, load_served
    from follower.server import FollowerServer

    try:
        segmenter, threads = load_served(weights, config.runtime, config.inference_threads)
    except (models.ModelLoadError, RuntimeUnavailableError) as error:
        raise StartupError(f"{error}") from error
    info = {
        "model": segmenter.name,
        "input_size": segmenter.input_size,
        "runtime": segmenter.runtime,
        "backend": segmenter.backend,
        "device": segmenter.device,
        "inference_threads": threads,
    }
    server = FollowerServer(segmenter.class_probabilities, config, info)
    try:
        listener = eventlet.listen((config.host, config.port), reuse_port=False)
    except OSError as error:
        raise StartupError(f"Cannot listen on {config.host}:{config.port}: {error.strerror}") from error
    logger.info(
        "Serving %s (input %dx%d, %s on %s, inference threads: %s) on http://%s:%d (ping every %g s); "
        "waiting for the simulator",
        segmenter.name, segmenter.input_size, segmenter.input_size, engine(segmenter), segmenter.device,
        describe_threads(threads),
        config.host, config.port, config.ping_interval,
    )  # fmt: skip
    if config.record:
        logger.info("Recording every connection into %s", config.record)
    return server, listener


def engine(segmenter: Segmenter) -> str:
    """What runs the network, for the start-up line: ``"tensorflow"``, ``"openvino (converted from tensorflow)"``."""
    if segmenter.runtime == "keras":
        return segmenter.backend
    return f"{segmenter.runtime} (converted from {segmenter.backend})"


@contextlib.contextmanager
def quiet_tensorflow(show: bool) -> Iterator[None]:
    """Import TensorFlow inside this block without its C++ start-up lines, unless ``show``.

    ``TF_CPP_MIN_LOG_LEVEL`` hides TensorFlow's own INFO and WARNING lines (cpu_feature_guard), but not the
    oneDNN notice, which two of its libraries (libtensorflow_framework and the profiler's), each with its own
    copy of absl, log before absl is initialised: hence twice. Standard error goes to a file meanwhile; what
    was written there is dropped, or printed as it was when the block raises.
    """
    if show:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore_stderr(saved)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        _restore_stderr(saved)


def _restore_stderr(saved: int) -> None:
    """Point file descriptor 2 back at the standard error saved as ``saved``."""
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


def serve_until_stopped(server: FollowerServer, listener: socket.socket) -> int:
    """Serve until SIGINT or SIGTERM, then disconnect the clients and stop; returns the exit status.

    eventlet's WebSocket server is patched first, for the whole process (`follower.websocket_mask`: fast
    unmasking, a cap on fragmented messages). The signal handlers only record the signal: an exception raised
    from them would land in whichever green thread happens to run, which may swallow it. The main green thread
    polls for it instead. Stopping gets `SHUTDOWN_GRACE_S`; past it the process exits at once (``os._exit``), with
    a line saying so.
    """
    import eventlet
    import eventlet.wsgi

    from follower import websocket_mask

    websocket_mask.install()

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
    stopped = _stop(server, web)
    listener.close()
    counts = server.connections.totals.counts
    logger.info(
        "Stopped after %d frames (%d dropped, %d rejected)",
        counts["processed"], counts["dropped"], counts["rejected"],
    )  # fmt: skip
    if not stopped:
        logger.warning("Connections still open after %g s: exiting without waiting for them", SHUTDOWN_GRACE_S)
        logging.shutdown()
        os._exit(status)
    return status


def _stop(server: FollowerServer, web: GreenThread) -> bool:
    """Disconnect the clients and stop the web server; False when that took more than `SHUTDOWN_GRACE_S`."""
    import eventlet

    with eventlet.Timeout(SHUTDOWN_GRACE_S, False):
        server.disconnect_all()
        web.kill()
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
