"""``python -m sim_bridge.replay FLIGHT [--url URL] [--speed X | --as-fast-as-possible] [--json OUT]``.

Plays a flight's frames against a running server as the simulator would send them (`SimulatorClient`), with
their recorded timing scaled by ``--speed``, collects the events the server sends back, and prints a summary
(`sim_bridge.summary`). An event is attributed to the newest frame sent when it arrives, which is the frame it
answers as long as the server answers within a frame interval; ``--as-fast-as-possible`` sends without
pauses, so the server drops frames and the attribution, latencies and localization errors are only
indicative: use it for throughput, and the recorded timing for accuracy. Exit status 1, with the reason,
when the file is unreadable or the server does not answer or goes away.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from sim_bridge.client import ClientError, SimulatorClient
from sim_bridge.flight import Flight, FlightError, read_flight
from sim_bridge.protocol import SENSOR_FRAME
from sim_bridge.summary import Response, format_summary, summarize

DEFAULT_URL = "http://127.0.0.1:4567"
SETTLE_S = 1.0


class ReplayError(Exception):
    """The server could not be reached or went away during the replay."""


class _Collector:
    """Attributes each event arriving on the client's reader thread to the newest frame sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent_at: list[float] = []
        self.responses: list[Response] = []
        self.last_arrival = time.monotonic()

    def sending(self) -> None:
        """Note that the next frame is being sent now."""
        with self.lock:
            self.sent_at.append(time.monotonic())

    def __call__(self, name: str, data: Any, arrival: float) -> None:
        with self.lock:
            self.last_arrival = arrival
            if self.sent_at:  # an event before any frame answers nothing
                frame = len(self.sent_at) - 1
                self.responses.append(Response(frame, name, data, arrival - self.sent_at[frame]))


def play(
    flight: Flight, url: str = DEFAULT_URL, speed: float | None = 1.0, settle_s: float = SETTLE_S
) -> tuple[int, list[Response]]:
    """Send every frame of ``flight`` to the server at ``url``: (frames sent, the server's answers, each
    attributed to the newest frame sent when it arrived).

    ``speed`` scales the recorded timing (2.0: twice as fast); None sends the frames back to back. After the
    last frame, waits until no event came for ``settle_s`` seconds. Raises ReplayError.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be positive. Received: speed={speed!r}")
    collector = _Collector()
    try:
        client = SimulatorClient(url, on_event=collector)
    except ClientError as error:
        raise ReplayError(f"the server does not answer: {error}") from error
    with client:
        start = time.monotonic()
        t0 = flight.frames[0].t if flight.frames else 0.0
        for frame in flight.frames:
            if speed is not None:
                time.sleep(max(0.0, start + (frame.t - t0) / speed - time.monotonic()))
            if client.closed.is_set():
                raise ReplayError(f"the server closed the connection before frame {frame.index}")
            collector.sending()
            try:
                client.emit(SENSOR_FRAME, frame.data)
            except OSError as error:  # websocket-client's exceptions derive from it too
                raise ReplayError(f"cannot send frame {frame.index}: {error}") from error
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle_s:
            time.sleep(settle_s / 10)
            quiet_since = max(quiet_since, collector.last_arrival)
    with collector.lock:
        return len(collector.sent_at), list(collector.responses)


def replay(flight: Flight, url: str = DEFAULT_URL, speed: float | None = 1.0, settle_s: float = SETTLE_S) -> dict:
    """`play` ``flight`` against the server at ``url`` and summarise its answers (`sim_bridge.summary`)."""
    return summarize(flight.frames, *play(flight, url, speed, settle_s))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sim_bridge.replay", description=__doc__.split("\n\n")[1])
    parser.add_argument("flight", help="flight file (.flight.jsonl or .flight.jsonl.gz)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the server (default: {DEFAULT_URL})")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default: 1.0)")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="send frames without pauses")
    parser.add_argument("--json", metavar="OUT", help="also write the summary as JSON to OUT")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error(f"--speed must be positive. Received: --speed={args.speed}")
    try:
        flight = read_flight(args.flight)
        summary = replay(flight, args.url, None if args.as_fast_as_possible else args.speed)
        print(format_summary(summary))
        if args.json:
            write_json(args.json, summary)
    except (FlightError, ReplayError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def write_json(path: str | os.PathLike, summary: dict) -> None:
    """Write a summary as indented JSON; raises OSError."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(summary, file, indent=2)
        file.write("\n")


if __name__ == "__main__":
    sys.exit(main())
