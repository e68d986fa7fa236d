"""``python -m sim_bridge.fly [--url URL] [--follow quadsim|coords] [--lockstep] [--seed S] [scene options]
[--json OUT] [--record FLIGHT] [--plot PNG]``: a closed-loop flight of a simulated QuadSim against a running server.

A small world (`sim_bridge.world`: the hero and bystanders walking, cut out of the simulator's own images, panels
that hide them) is seen by the drone's gimbal camera (`sim_bridge.render`) and sent to the server exactly as the
simulator sends it (`sim_bridge.client.SimulatorClient`: a raw WebSocket, 5 ``sensor_frame`` a second, PINGs).
The drone (`sim_bridge.drone`) reacts to ``object_detected`` and ``object_lost`` as the simulator does (``--follow
quadsim``) or as a drone that knows only the positions it is sent (``--follow coords``), patrols, and drops back
to patrol after 3 s without a PING or PONG. The flight is then scored (`sim_bridge.flight_score`): printed as a
table, and written to ``--json``. The server's live page shows the flight as it happens.

Time runs in real time by default, the world moving in steps of `sim_bridge.world.TICK_S`; an event acts when it
arrives. ``--lockstep`` advances simulated time only once the server has settled the frame sent (processed,
dropped, rejected or failed, by its ``GET /healthz`` counters) and its events are in, and acts on them at that
frame's time: a flight then gives the same events on any machine. ``--seed`` makes the world, and so the flight,
reproducible. ``--record`` writes the flight, frames with truth and the events received, as a flight file
(docs/flights.md) that ``sim_bridge.replay`` and ``follower.replay`` read; ``--plot`` draws it from above
(`sim_bridge.flight_plot`). The cut-outs come from ``--data`` (../shared/followme_data/train by default; drawn
stand-ins with ``--synthetic``, or when that folder is absent). Exit status 1, with the reason, when the server
does not answer, goes away, or a file cannot be written.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.files import write_json
from sim_bridge.client import ClientError, SimulatorClient
from sim_bridge.cutouts import default_library, synthetic_library
from sim_bridge.drone import BEHAVIOURS, Drone, Mode
from sim_bridge.flight import FlightWriter
from sim_bridge.flight_score import Answer, FlightLog, FrameRecord, Switch, format_score, score, toward
from sim_bridge.geometry import Intrinsics
from sim_bridge.protocol import build_sensor_frame
from sim_bridge.render import View, render
from sim_bridge.replay import (
    DEFAULT_URL,
    DRAIN_TIMEOUT_S,
    SETTLE_S,
    Collector,
    ReplayError,
    counts_since,
    drain,
    send_frame,
    server_counts,
    settle_frame,
)
from sim_bridge.summary import DETECTED, LOST
from sim_bridge.synth import FPS, IMAGE_SIZE, START_EPOCH_S, TARGET
from sim_bridge.world import TICK_S, Scene, World, build_world

FRAME_INTERVAL_S = 1.0 / FPS
TICKS_PER_FRAME = round(FRAME_INTERVAL_S / TICK_S)
MIN_PIXELS = 5  # the follower's default --min-pixels
RESET_TIMEOUT_S = 10.0
Observer = Callable[[dict, View], None]


class FlyError(Exception):
    """The server could not be reached or went away during the flight."""


class _Flight:
    """One flight in progress: the drone, the connection, the log, and the flight file when recording."""

    def __init__(
        self, world: World, url: str, behaviour: str, lockstep: bool, writer: FlightWriter | None, epoch: float
    ) -> None:
        self.world, self.url, self.lockstep, self.writer, self.epoch = world, url, lockstep, writer, epoch
        self.drone = Drone(world, behaviour)
        self.log = FlightLog(behaviour, FRAME_INTERVAL_S)
        self.collector = Collector()
        try:
            self.client = SimulatorClient(url, on_event=self.collector)
        except ClientError as error:
            raise FlyError(f"the server does not answer: {error}") from error
        self.before = server_counts(url, self.client.sid)  # this connection's, where the server lists them
        if lockstep and self.before is None:
            self.client.close()
            raise FlyError(f"--lockstep needs the server's GET /healthz, which {url} does not answer")
        self.applied = 0
        self.signs_of_life = 0
        self.on: str | None = None  # what the last position accepted was near

    def send(self, t: float, observer: Observer | None) -> None:
        """Render the camera's view at ``t``, log it, and send it as a ``sensor_frame``."""
        body, gimbal = self.drone.poses()
        view = render(self.world, t, gimbal)
        payload = build_sensor_frame(self.epoch + t, body, gimbal, view.rgb, view.depth_m)
        following = self.drone.mode is Mode.FOLLOW
        index = len(self.log.frames)
        self.log.frames.append(
            FrameRecord(
                index=index,
                t=t,
                mode=self.drone.mode.value,
                on=self.on if following else None,
                hero_pixels=int(np.count_nonzero(view.truth.mask == TARGET)),
                truth_position=view.truth.position,
                hero=self.world.hero.feet(t),
                drone=self.drone.position.copy(),
            )
        )
        if observer is not None:
            observer(payload, view)
        if self.writer is not None:
            self.writer.write_frame(self.epoch + t, payload, view.truth)
        try:
            send_frame(self.client, self.collector, index, payload)
        except ReplayError as error:
            raise FlyError(str(error)) from error
        if self.lockstep:
            settle_frame(self.client, self.url, self.before, index + 1, DRAIN_TIMEOUT_S)

    def hear(self, t: float) -> None:
        """Act at ``t`` on the events and the PINGs or PONGs that came since the last call."""
        with self.collector.lock:
            responses = self.collector.responses[self.applied :]
            self.applied += len(responses)
        for response in responses:
            self.act(t, response.frame, response.name, response.data)
        signs = self.client.server_pings + self.client.pongs
        if signs != self.signs_of_life:
            self.signs_of_life = signs
            self.drone.pinged(t)

    def act(self, t: float, frame: int, name: str, data: Any) -> None:
        """React to one event as the simulator does, and log it."""
        accepted = near = None
        if name == DETECTED:
            coords = np.asarray(data["coords"], np.float64)
            near = toward(self.world, coords, frame * FRAME_INTERVAL_S)
            patrolling = self.drone.mode is Mode.PATROL
            accepted = self.drone.detected(coords, t)
            if accepted:
                self.on = near
                if patrolling:
                    self.log.switches.append(Switch(t, frame, Mode.FOLLOW.value, DETECTED, near))
        elif name == LOST and self.drone.lost(t):
            self.log.switches.append(Switch(t, frame, Mode.PATROL.value, LOST))
        self.log.answers.append(Answer(t, frame, name, data, accepted, near))
        if self.writer is not None:
            self.writer.write_event(self.epoch + t, name, data, frame)

    def step(self, t: float) -> None:
        """Move the world's drone by one tick from ``t``."""
        if self.drone.step(t, TICK_S):
            self.log.switches.append(Switch(t, None, Mode.PATROL.value, "ping timeout"))

    def finish(self, t: float, settle_s: float) -> None:
        """Wait for the server's last answers, act on them, count the frames, and leave the server as found."""
        sid = self.client.sid
        drain(self.url, self.before, len(self.log.frames), self.collector, settle_s, DRAIN_TIMEOUT_S, sid)
        self.hear(t)
        self.log.counts = counts_since(self.url, self.before, sid)
        self.client.close()
        wait_for_patrol(self.url)


def wait_for_patrol(url: str, timeout: float = RESET_TIMEOUT_S) -> None:
    """Wait until the server, having seen the connection close, is back in PATROL (its tracker reset), so that
    the next flight starts as this one did; returns at once without ``GET /healthz``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=5) as response:
                if json.loads(response.read()).get("mode") != "FOLLOW":
                    return
        except (OSError, ValueError):
            return
        time.sleep(0.05)


def fly(
    world: World,
    url: str = DEFAULT_URL,
    behaviour: str = "quadsim",
    lockstep: bool = False,
    record: str | Path | None = None,
    source: str = "sim_bridge.fly",
    observer: Observer | None = None,
    settle_s: float = SETTLE_S,
) -> FlightLog:
    """Fly ``world`` against the server at ``url``: the flight's log. ``record`` writes the flight file (it must
    not exist; ``source`` goes in its header); ``observer`` sees each payload and its rendered view before it is
    sent. Raises FlyError, and OSError when the flight file cannot be written."""
    epoch = START_EPOCH_S if lockstep else round(time.time(), 3)
    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    writer = FlightWriter(record, source, Intrinsics.default(IMAGE_SIZE), created) if record else None
    try:
        flight = _Flight(world, url, behaviour, lockstep, writer, epoch)
        ticks = round(world.duration_s / TICK_S)
        start = time.monotonic()
        try:
            for tick in range(ticks):
                t = tick * TICK_S
                if not lockstep:
                    time.sleep(max(0.0, start + t - time.monotonic()))
                if tick % TICKS_PER_FRAME == 0:
                    flight.send(t, observer)
                flight.hear(t)
                flight.step(t)
            flight.finish(ticks * TICK_S, settle_s)
        finally:
            flight.client.close()
    finally:
        if writer is not None:
            writer.close()
    return flight.log


def scene_from(args: argparse.Namespace) -> Scene:
    """The `Scene` the command line asks for."""
    return Scene(
        duration_s=args.duration,
        bystanders=args.bystanders,
        hero_distance_m=args.hero_distance,
        facing_hero=not args.hero_behind,
        occlusions_s=tuple(args.occlusion),
        crossings=args.crossings,
        walls=args.walls,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sim_bridge.fly", description=__doc__.split("\n\n")[1])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the server (default: {DEFAULT_URL})")
    parser.add_argument(
        "--follow", choices=BEHAVIOURS, default="quadsim", help="the drone's behaviour (default: quadsim)"
    )
    parser.add_argument("--lockstep", action="store_true", help="advance time only once the server settled each frame")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the world (default: 0)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of flight (default: 40)")
    parser.add_argument("--bystanders", type=int, default=4, help="people walking about besides the hero (default: 4)")
    parser.add_argument("--hero-distance", type=float, default=15.0, help="metres from the drone's start (default: 15)")
    parser.add_argument("--hero-behind", action="store_true", help="the drone starts facing away from the hero")
    parser.add_argument(
        "--occlusion", type=float, action="append", default=[], metavar="S", help="a canopy hides the hero for S s"
    )
    parser.add_argument(
        "--crossings", type=int, default=0, help="bystanders crossing in front of the hero (default: 0)"
    )
    parser.add_argument("--walls", type=int, default=2, help="upright walls away from the paths (default: 2)")
    people = parser.add_mutually_exclusive_group()
    people.add_argument("--data", type=Path, help="dataset to cut people from (default: ../shared/followme_data/train)")
    people.add_argument("--synthetic", action="store_true", help="draw the people instead of cutting them out")
    parser.add_argument(
        "--min-pixels", type=int, default=MIN_PIXELS, help="hero pixels to call it visible (default: 5)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the score as JSON to OUT")
    parser.add_argument("--record", type=Path, metavar="FLIGHT", help="write the flight file (must not exist)")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="draw the flight from above")
    args = parser.parse_args(argv)
    for flag, value in (("--duration", args.duration), ("--hero-distance", args.hero_distance)):
        if not value > 0:
            parser.error(f"{flag} must be positive. Received: {flag}={value}")
    for flag, value in (("--bystanders", args.bystanders), ("--crossings", args.crossings), ("--walls", args.walls)):
        if value < 0:
            parser.error(f"{flag} must not be negative. Received: {flag}={value}")
    try:
        library = synthetic_library() if args.synthetic else default_library(args.data)
    except (OSError, ValueError) as error:
        print(f"error: cannot cut people from {args.data}: {error}", file=sys.stderr)
        return 1
    world = build_world(scene_from(args), args.seed, library)
    source = f"sim_bridge.fly --follow {args.follow} --seed {args.seed} ({library.source})"
    print(f"Flying {args.duration:g} s ({args.follow}, seed {args.seed}, people from {library.source}); "
          f"live view: {args.url.rstrip('/')}/", file=sys.stderr)  # fmt: skip
    try:
        log = fly(world, args.url, args.follow, args.lockstep, args.record, source)
        result = score(log, args.min_pixels)
        print(format_score(result))
        if args.json:
            write_json(args.json, result, sort_keys=False)
        if args.plot:
            from sim_bridge.flight_plot import plot_flight

            plot_flight(world, log, args.plot, args.min_pixels)
    except (FlyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
