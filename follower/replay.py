"""``python -m follower.replay FLIGHT MODEL [--json OUT]``: a flight through the follower's pipeline, in process.

The same decode → segment → locate → decide → answer path as the server (`follower.pipeline.process_frame`, the
same tracker, `follower.tracking`, and `follower.answers`), without sockets: every frame is processed, in order,
so the events are deterministic. The summary is that of ``python -m sim_bridge.replay`` (`sim_bridge.summary`),
its latency the time the pipeline took per frame, plus ``frames_per_s`` (frames over the pipeline's total time),
``frames_rejected`` and ``decisions`` (how many frames the tracker found idle, candidate, confirmed, tracking,
coasting, holding, lost). Settings come from the ``FOLLOWER_*`` variables, as for the server (`follower.config`).
Exit status 1, with the reason, when the flight or the model cannot be read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from follower import config as config_module
from follower.answers import Answerer
from follower.pipeline import Segment, Settings, process_frame
from follower.tracking import KalmanTracker, Tracker, TrackerSettings, make_tracker
from models.files import write_json
from sim_bridge.flight import Flight, FlightError, read_flight
from sim_bridge.protocol import ProtocolError
from sim_bridge.summary import Response, format_summary, summarize


def replay(flight: Flight, segment: Segment, settings: Settings, tracker: Tracker | None = None) -> dict[str, Any]:
    """Process every frame of ``flight`` with ``segment`` and ``tracker`` (default: a new `KalmanTracker`); the
    summary of the events the server would send."""
    tracker = tracker or KalmanTracker()
    answerer = Answerer()
    decisions: Counter = Counter()
    responses: list[Response] = []
    rejected = 0
    busy_s = 0.0
    for frame in flight.frames:
        start = time.perf_counter()
        try:
            result = process_frame(frame.data, segment, settings)
        except ProtocolError:
            rejected += 1
            continue
        decision = tracker.update(result.detection, result.frame.timestamp)
        decisions[decision.status.value] += 1
        events = answerer.answer(decision)
        elapsed = time.perf_counter() - start
        busy_s += elapsed
        responses.extend(Response(frame.index, event.name, event.data, elapsed) for event in events)
    summary = summarize(flight.frames, len(flight.frames), responses)
    processed = len(flight.frames) - rejected
    summary["frames_per_s"] = round(processed / busy_s, 2) if busy_s > 0 else None
    summary["frames_rejected"] = rejected
    summary["decisions"] = dict(sorted(decisions.items()))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m follower.replay", description=__doc__.split("\n\n")[1])
    parser.add_argument("flight", help="flight file (.flight.jsonl or .flight.jsonl.gz)")
    parser.add_argument("model", help="model to run, e.g. weights/model_weights (NAME.keras + card)")
    parser.add_argument("--json", metavar="OUT", help="also write the summary as JSON to OUT")
    args = parser.parse_args(argv)
    try:
        config = config_module.resolve(config_module.from_environ(os.environ))
    except config_module.ConfigError as error:
        parser.error(str(error))
    try:
        flight = read_flight(args.flight)  # before loading TensorFlow: a bad file fails fast
    except FlightError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    import models
    from follower.segmenter import Segmenter

    try:
        segmenter = Segmenter.load(args.model)
        tracker = make_tracker(TrackerSettings.from_config(config))
        summary = replay(flight, segmenter, Settings.from_config(config), tracker)
        print(format_summary(summary))
        if args.json:
            write_json(args.json, summary, sort_keys=False)
    except (models.ModelLoadError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
