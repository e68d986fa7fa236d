"""``python -m sim_bridge.replay FLIGHT [--url URL] [--speed X | --as-fast-as-possible | --lockstep] [--json OUT]``.

Plays a flight's frames against a running server as the simulator would send them (`SimulatorClient`), every
recorded frame exactly as it came, malformed ones included (the server rejects them again), with their
recorded timing scaled by ``--speed``; collects the events the server sends back, and prints a summary
(`sim_bridge.summary`). An event is attributed to the newest frame sent when it arrives, which is the frame it
answers as long as the server answers within a frame interval. ``--as-fast-as-possible`` sends without
pauses, so the server drops frames and the attribution, latencies and localization errors are only
indicative: use it for throughput. ``--lockstep`` sends each frame once the previous one is settled, and its
events in: the same flight against the same model gives the same events, frame for frame. Exit status 1, with
the reason, when the file is unreadable or the server does not answer or goes away.

After the last frame the replay waits until the server has settled every frame it sent (processed, dropped,
rejected or failed, by the server's ``GET /healthz`` counters, at most `DRAIN_TIMEOUT_S`) and then until no
event came for a second. The counters are the replay's own connection's where the server lists its connections
by Engine.IO session (ours does), else the server's across all its clients: then replay against a server of
your own. A server without ``/healthz`` is only waited on for that quiet second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, NamedTuple

from models.files import write_json
from sim_bridge.client import ClientError, SimulatorClient
from sim_bridge.flight import Flight, FlightError, read_flight
from sim_bridge.protocol import SENSOR_FRAME
from sim_bridge.summary import FRAME_ENDS, Response, format_summary, summarize

DEFAULT_URL = "http://127.0.0.1:4567"
SETTLE_S = 1.0
DRAIN_TIMEOUT_S = 30.0
POLL_S = 0.02


class ReplayError(Exception):
    """The server could not be reached or went away during the replay."""


class Played(NamedTuple):
    """What `play` got back: the frames sent, the server's answers and its frame counters over the replay."""

    sent: int
    responses: list[Response]
    counts: dict[str, int] | None  # `counts_since` the first frame, or None from a server without them


class Collector:
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


def server_counts(url: str, engine_sid: str | None = None) -> dict[str, int] | None:
    """The server's frame counters (``frames_<end>`` of ``GET /healthz``, by end), or None without them: those of
    the connection of Engine.IO session ``engine_sid`` when the server lists its connections (zeros before its
    first frame), else the server's own."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=5) as response:
            health = json.loads(response.read())
        if engine_sid is not None and isinstance(health.get("connections"), list):
            mine = [c for c in health["connections"] if c.get("engine_sid") == engine_sid]
            return {end: int(mine[0][f"frames_{end}"]) if mine else 0 for end in FRAME_ENDS}
        return {end: int(health[f"frames_{end}"]) for end in FRAME_ENDS}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def counts_since(url: str, before: dict[str, int] | None, engine_sid: str | None = None) -> dict[str, int] | None:
    """The server's frame counters since ``before`` (`server_counts`), or None without them."""
    now = server_counts(url, engine_sid)
    if now is None or before is None:
        return None
    return {end: now[end] - before[end] for end in FRAME_ENDS}


def wait_settled(
    url: str, before: dict[str, int] | None, frames: int, timeout: float, engine_sid: str | None = None
) -> None:
    """Wait until the server settled ``frames`` more frames than ``before``, or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while (since := counts_since(url, before, engine_sid)) is not None:
        if sum(since.values()) >= frames or time.monotonic() > deadline:
            return
        time.sleep(POLL_S)


def play(
    flight: Flight,
    url: str = DEFAULT_URL,
    speed: float | None = 1.0,
    settle_s: float = SETTLE_S,
    lockstep: bool = False,
    drain_timeout_s: float = DRAIN_TIMEOUT_S,
) -> Played:
    """Send every frame of ``flight`` to the server at ``url``: the frames sent, the server's answers (each
    attributed to the newest frame sent when it arrived) and the server's counters over the replay, read
    before disconnecting: those of the replay's own connection where the server lists its connections.

    ``speed`` scales the recorded timing (2.0: twice as fast); None sends the frames back to back; ``lockstep``
    sends each frame once the previous one is settled and its events in (``speed`` is then ignored). Then
    waits for the server to settle every frame sent (at most ``drain_timeout_s``) and until no event came for
    ``settle_s`` seconds. Raises ReplayError.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be positive. Received: speed={speed!r}")
    collector = Collector()
    try:
        client = SimulatorClient(url, on_event=collector)
    except ClientError as error:
        raise ReplayError(f"the server does not answer: {error}") from error
    with client:
        before = server_counts(url, client.sid)
        if lockstep and before is None:
            raise ReplayError(f"--lockstep needs the server's GET /healthz, which {url} does not answer")
        start = time.monotonic()
        t0 = flight.frames[0].t if flight.frames else 0.0
        for sent, frame in enumerate(flight.frames):
            if speed is not None and not lockstep:
                time.sleep(max(0.0, start + (frame.t - t0) / speed - time.monotonic()))
            send_frame(client, collector, frame.index, frame.data)
            if lockstep:
                settle_frame(client, url, before, sent + 1, drain_timeout_s)
        drain(url, before, len(flight.frames), collector, settle_s, drain_timeout_s, client.sid)
        counts = counts_since(url, before, client.sid)
    with collector.lock:
        return Played(len(collector.sent_at), list(collector.responses), counts)


def settle_frame(client: SimulatorClient, url: str, before: dict[str, int] | None, frames: int, timeout: float) -> None:
    """Wait until the server settled ``frames`` frames of the client's since ``before`` and the events it sent for
    them are in (a PING answered: the server queues the PONG behind every event queued before it)."""
    wait_settled(url, before, frames, timeout, client.sid)
    with contextlib.suppress(TimeoutError):
        client.round_trip(timeout)


def drain(
    url: str,
    before: dict[str, int] | None,
    frames: int,
    collector: Collector,
    settle_s: float,
    timeout: float,
    engine_sid: str | None = None,
) -> None:
    """After the last frame: wait until the server settled all ``frames`` (those of the connection of Engine.IO
    session ``engine_sid`` when given, `server_counts`; at most ``timeout``), then until no event came for
    ``settle_s``."""
    wait_settled(url, before, frames, timeout, engine_sid)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < settle_s:
        time.sleep(settle_s / 10)
        quiet_since = max(quiet_since, collector.last_arrival)


def send_frame(client: SimulatorClient, collector: Collector, index: int, data: Any) -> None:
    """Send one frame as it is; ReplayError when the connection is gone."""
    if client.closed.is_set():
        raise ReplayError(f"the server closed the connection before frame {index}")
    collector.sending()
    try:
        client.emit(SENSOR_FRAME, data)
    except OSError as error:  # websocket-client's exceptions derive from it too
        raise ReplayError(f"cannot send frame {index}: {error}") from error


def replay(
    flight: Flight,
    url: str = DEFAULT_URL,
    speed: float | None = 1.0,
    settle_s: float = SETTLE_S,
    lockstep: bool = False,
) -> dict:
    """`play` ``flight`` against the server at ``url`` and summarise its answers (`sim_bridge.summary`), with
    the server's ``frames_processed``, ``frames_dropped``, ``frames_rejected`` and ``frames_failed`` over the
    replay when it reports them (the replay's own connection's, `play`)."""
    played = play(flight, url, speed, settle_s, lockstep)
    summary = summarize(flight.frames, played.sent, played.responses)
    summary.update({f"frames_{end}": count for end, count in (played.counts or {}).items()})
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sim_bridge.replay", description=__doc__.split("\n\n")[1])
    parser.add_argument("flight", help="flight file (.flight.jsonl or .flight.jsonl.gz)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the server (default: {DEFAULT_URL})")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default: 1.0)")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="send frames without pauses")
    pace.add_argument(
        "--lockstep", action="store_true", help="send each frame once the server settled the previous one"
    )
    parser.add_argument("--json", metavar="OUT", help="also write the summary as JSON to OUT")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error(f"--speed must be positive. Received: --speed={args.speed}")
    try:
        flight = read_flight(args.flight)
        speed = None if args.as_fast_as_possible else args.speed
        summary = replay(flight, args.url, speed, lockstep=args.lockstep)
        print(format_summary(summary))
        if args.json:
            write_json(args.json, summary, sort_keys=False)
    except (FlightError, ReplayError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
