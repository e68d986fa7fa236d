"""Closed-loop flights (`sim_bridge.fly`) against the real server, its network replaced by the flight's own truth
masks (`world_truth_server`), so these tests check the loop, the drone and the score, not a model.

The lockstep flight runs on drawn people (it needs no data, so CI covers the loop either way) and again on people
cut out of ../shared/followme_data/train when it is there.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from conftest import FOLLOWME_DATA, require
from follower_helpers import ServerProcess
from truth_server import TruthSegmenter
from world_truth_server import MaskFolder

from follower.pipeline import Settings
from follower.replay import replay as replay_in_process
from follower.tracking import TrackerSettings, make_tracker
from sim_bridge import cutouts
from sim_bridge.drone import FOLLOW_DISTANCE_M
from sim_bridge.flight import read_flight
from sim_bridge.flight_score import (
    BYSTANDER,
    FOLLOW,
    HERO,
    NOTHING,
    PATROL,
    SCORE_KEYS,
    Answer,
    FlightLog,
    FrameRecord,
    Switch,
    lost_after_visible,
    score,
    toward,
)
from sim_bridge.fly import FRAME_INTERVAL_S, MIN_PIXELS, fly, main
from sim_bridge.replay import play
from sim_bridge.synth import TARGET
from sim_bridge.world import Scene, build_world

LOST_AFTER = 12  # frames: the follower's default (6, 1.4 s) sends object_lost within a 2 s occlusion
ACQUIRE_FRAMES = 3  # the hero comes into view during the first sweep; two detections confirm it
OCCLUSION = Scene(duration_s=16.0, bystanders=4, occlusions_s=(2.0,), crossings=1)
WALKING = Scene(duration_s=12.0, bystanders=3)


@pytest.fixture(scope="module")
def masks(tmp_path_factory) -> MaskFolder:
    return MaskFolder(tmp_path_factory.mktemp("masks"))


@pytest.fixture(scope="module")
def truth_server(masks):
    process = ServerProcess(masks.folder, "--lost-after", str(LOST_AFTER), module="world_truth_server")
    try:
        process.wait_for_line("waiting for the simulator")
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module", params=["drawn", "cut out"])
def library(request) -> cutouts.Library:
    if request.param == "drawn":
        return cutouts.synthetic_library()
    return cutouts.load_library(require(FOLLOWME_DATA / "train", "the Follow-Me training images"))


def answers(log: FlightLog) -> list[tuple]:
    """(frame, event, payload) of each event; a marker's id, counted over the server's life, left out."""
    return [(a.frame, a.name, {key: value for key, value in a.data.items() if key != "id"}) for a in log.answers]


def hidden_runs(log: FlightLog) -> list[list[FrameRecord]]:
    """The runs of frames in which the hero is not visible, after it first was."""
    runs: list[list[FrameRecord]] = []
    seen = False
    for frame in log.frames:
        if frame.hero_pixels > MIN_PIXELS:
            seen = True
        elif seen and runs and runs[-1][-1].index == frame.index - 1:
            runs[-1].append(frame)
        elif seen:
            runs.append([frame])
    return runs


# ---------------------------------------------------------------------------------------------- closed loop


def test_a_lockstep_flight_acquires_keeps_follow_through_a_2_s_occlusion_and_never_follows_a_bystander(
    truth_server, masks, library, tmp_path
):
    world = build_world(OCCLUSION, 5, library)
    path = tmp_path / "flight.jsonl.gz"
    crossed = []  # frames in which a bystander covers part of the hero's box

    def observe(payload: dict, view) -> None:
        masks.observe(payload, view)
        rows, cols = np.nonzero(view.truth.mask == TARGET)
        if len(rows):
            box = view.truth.mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            crossed.append(bool((box == 1).any()))

    log = fly(world, truth_server.url, "quadsim", lockstep=True, record=path, observer=observe, settle_s=0.2)
    result = score(log, MIN_PIXELS)

    first = next(f for f in log.frames if f.hero_pixels > MIN_PIXELS)
    assert first.index <= 5 and result["acquisition_s"] <= ACQUIRE_FRAMES * FRAME_INTERVAL_S
    longest = max(hidden_runs(log), key=len)
    assert len(longest) >= 2.0 / FRAME_INTERVAL_S  # the canopy hid it for 2 s ...
    assert all(frame.mode == FOLLOW and frame.on == HERO for frame in longest)  # ... and the drone stayed on it
    assert [(s.mode, s.toward) for s in log.switches] == [(FOLLOW, HERO)]  # never lost, never on a bystander
    assert any(crossed)  # a bystander did pass in front of it
    assert result["wrong_follows"] == 0 and result["lost_while_visible"] == 0 and result["follow_share"] == 1.0
    assert result["position_error_m"]["median"] < 0.3
    assert result["frames"] == {"answered": len(log.frames), "dropped": 0, "rejected": 0}

    flight = read_flight(path)  # the flight file: frames with truth, and the events, readable by both replays
    assert len(flight.frames) == len(log.frames) and all(f.truth.mask is not None for f in flight.frames)
    assert [(e.frame, e.name) for e in flight.events] == [(a.frame, a.name) for a in log.answers]
    frames_sent, responses, _ = play(flight, truth_server.url, lockstep=True, settle_s=0.2)
    assert frames_sent == len(log.frames)
    replayed = [(r.frame, r.name, {k: v for k, v in r.data.items() if k != "id"}) for r in responses]
    assert replayed == answers(log)
    tracker = make_tracker(TrackerSettings(lost_after=LOST_AFTER))
    summary = replay_in_process(flight, TruthSegmenter(flight), Settings(), tracker)
    assert summary["events"] == dict(sorted(Counter(a.name for a in log.answers).items()))


def test_lockstep_flights_give_the_same_events_every_time(truth_server, masks):
    world = build_world(Scene(duration_s=6.0, bystanders=4, crossings=1), 6, cutouts.synthetic_library())
    first, second = (
        fly(world, truth_server.url, "coords", lockstep=True, observer=masks.observe, settle_s=0.2) for _ in range(2)
    )
    assert answers(first) and answers(first) == answers(second)
    assert [f.drone.tolist() for f in first.frames] == [f.drone.tolist() for f in second.frames]


@pytest.mark.parametrize("behaviour", ["quadsim", "coords"])
def test_both_drones_keep_close_to_the_hero(truth_server, masks, behaviour):
    world = build_world(WALKING, 8, cutouts.synthetic_library())
    log = fly(world, truth_server.url, behaviour, lockstep=True, observer=masks.observe, settle_s=0.2)
    result = score(log, MIN_PIXELS)
    assert result["acquisition_s"] is not None and result["follow_share"] >= 0.95
    settled = [f for f in log.frames if f.mode == FOLLOW and f.t > 3.0]
    distances = [np.linalg.norm((f.drone - f.hero)[:2]) for f in settled]
    assert len(settled) > 0.7 * len(log.frames)
    assert abs(result["distance_kept_m"]["median"] - FOLLOW_DISTANCE_M) < 1.0 and max(distances) < 4.0


def test_a_real_time_flight_sends_5_frames_a_second_and_acts_on_the_answers(truth_server, masks):
    world = build_world(Scene(duration_s=4.0, bystanders=2), 9, cutouts.synthetic_library())
    log = fly(world, truth_server.url, "quadsim", observer=masks.observe, settle_s=0.2)
    result = score(log, MIN_PIXELS)
    assert len(log.frames) == 20 and [f.t for f in log.frames][:3] == pytest.approx([0.0, 0.2, 0.4])
    assert result["frames"]["answered"] + result["frames"]["dropped"] == 20 and result["frames"]["answered"] >= 15
    assert result["acquisition_s"] is not None and log.switches[0].mode == FOLLOW


def test_the_command_writes_the_score_the_flight_and_the_picture(truth_server, tmp_path, capsys):
    out, flight, picture = tmp_path / "score.json", tmp_path / "f.flight.jsonl.gz", tmp_path / "f.png"
    argv = ["--url", truth_server.url, "--lockstep", "--synthetic", "--duration", "3", "--seed", "2"]
    assert main([*argv, "--follow", "coords", "--json", str(out), "--record", str(flight), "--plot", str(picture)]) == 0
    written = json.loads(out.read_text())
    assert tuple(written) == SCORE_KEYS
    assert set(written["position_error_m"]) == {"median", "p90"} and set(written["distance_kept_m"]) == {"median"}
    assert set(written["frames"]) == {"answered", "dropped", "rejected"} and written["frames"]["answered"] == 15
    assert len(read_flight(flight).frames) == 15 and picture.read_bytes().startswith(b"\x89PNG")
    assert "frames answered / dropped / rejected" in capsys.readouterr().out
    assert main([*argv, "--record", str(flight)]) == 1  # it will not overwrite a flight
    assert main(["--url", "http://127.0.0.1:1", "--synthetic", "--duration", "1"]) == 1
    assert "the server does not answer" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- score


def frame(index: int, pixels: int, mode: str = PATROL, on: str | None = None) -> FrameRecord:
    position = np.array([float(index), 0.0, 0.9])
    return FrameRecord(index, index * 0.2, mode, on, pixels, position, position * [1, 1, 0], position + [-2.0, 0, 2])


def test_the_score_of_a_flight():
    pixels = [0, 0, 50, 50, 50, 50, 0, 0, 50, 50, 50, 50]
    modes = [PATROL] * 4 + [FOLLOW] * 4 + [PATROL, FOLLOW, FOLLOW, FOLLOW]
    ons = [None] * 4 + [HERO] * 4 + [None, BYSTANDER, HERO, HERO]
    log = FlightLog("quadsim", 0.2, [frame(i, p, m, o) for i, (p, m, o) in enumerate(zip(pixels, modes, ons))])
    log.switches = [
        Switch(0.7, 3, FOLLOW, "object_detected", HERO),
        Switch(1.5, 7, PATROL, "object_lost"),
        Switch(1.9, 9, FOLLOW, "object_detected", BYSTANDER),
    ]
    detected = {"coords": [9.0, 0.0, 0.9]}
    log.answers = [
        Answer(0.7, 3, "object_detected", {"coords": [3.0, 0.0, 0.9]}, True, HERO),
        Answer(1.5, 7, "object_lost", {"data": ""}, None, None),
        Answer(1.9, 9, "object_detected", detected, True, BYSTANDER),
        Answer(2.1, 10, "object_detected", {"coords": [10.0, 0.0, 0.9]}, True, HERO),
        Answer(2.1, 10, "object_lost", {"data": ""}, None, None),
    ]
    log.counts = {"processed": 11, "dropped": 1, "rejected": 0, "failed": 0}
    result = score(log, MIN_PIXELS)
    assert tuple(result) == SCORE_KEYS
    assert result["acquisition_s"] == pytest.approx(0.3)  # first visible at 0.4 s, FOLLOW on it at 0.7 s
    assert result["follow_share"] == pytest.approx(4 / 6, abs=1e-4)  # visible frames after 0.7 s: 4, 5, 8-11
    assert result["wrong_follow_s"] == pytest.approx(0.4) and result["wrong_follows"] == 1
    assert result["lost_while_visible"] == 1  # frame 10; frame 7's hero was hidden
    assert result["position_error_m"] == {"median": 0.0, "p90": pytest.approx(0.0)}
    assert result["distance_kept_m"]["median"] == pytest.approx(2.0)
    assert result["frames"] == {"answered": 11, "dropped": 1, "rejected": 0}
    assert lost_after_visible(log, MIN_PIXELS, 0.5) == 1 and lost_after_visible(log, MIN_PIXELS, 1.0) == 0


def test_a_flight_whose_hero_never_shows_has_no_acquisition():
    log = FlightLog("coords", 0.2, [frame(i, 0) for i in range(5)])
    result = score(log, MIN_PIXELS)
    assert result["acquisition_s"] is None and result["follow_share"] is None
    assert result["frames"] == {"answered": None, "dropped": None, "rejected": None}


def test_a_position_is_on_the_nearest_person_within_reach():
    world = build_world(Scene(duration_s=2.0, bystanders=2), 1, cutouts.synthetic_library())
    hero, other = world.people[0], world.people[1]
    assert toward(world, hero.centre(1.0) + [0.5, 0.0, 0.0], 1.0) == HERO
    assert toward(world, other.centre(1.0), 1.0) in (BYSTANDER, HERO)  # the hero may stand nearer
    assert toward(world, hero.centre(1.0) + [50.0, 50.0, 0.0], 1.0) == NOTHING
