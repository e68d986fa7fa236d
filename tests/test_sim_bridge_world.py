"""The flight world without a server: cut-outs, paths, the renderer, and the simulator's drone."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest
from conftest import FOLLOWME_DATA, require

from sim_bridge import cutouts
from sim_bridge.drone import (
    FOLLOW_DISTANCE_M,
    FOLLOW_HEIGHT_M,
    PING_TIMEOUT_S,
    SWEEP_DEG_S,
    Drone,
    Mode,
    Phase,
    look_angles,
)
from sim_bridge.geometry import Intrinsics, Pose, pixel_to_world, world_to_camera
from sim_bridge.protocol import build_sensor_frame, parse_sensor_frame
from sim_bridge.render import render
from sim_bridge.synth import IMAGE_SIZE, OTHER, TARGET
from sim_bridge.walkers import PAUSE_S, SPEED_RANGE_M_S, random_walk
from sim_bridge.world import PERSON_HEIGHT_M, TICK_S, Panel, Scene, build_world

F = float(IMAGE_SIZE)  # the default focal length in pixels


@pytest.fixture(scope="module")
def world():
    """A world of drawn people with an occlusion and a crossing; it needs no data."""
    return build_world(
        Scene(duration_s=20.0, bystanders=4, occlusions_s=(2.0,), crossings=1), 3, cutouts.synthetic_library()
    )


def camera_at(target: np.ndarray, distance: float, height: float, heading: float = 0.0) -> Pose:
    """A camera ``distance`` m from ``target`` horizontally, ``height`` m up, looking at it."""
    position = target + np.array([-distance * math.cos(heading), -distance * math.sin(heading), 0.0])
    position[2] = height
    d = target - position
    return Pose(*position, 0.0, math.degrees(math.atan2(-d[2], math.hypot(d[0], d[1]))), math.degrees(heading))


def alone(world, person: int = 0):
    """The world with one person and no panels."""
    return dataclasses.replace(world, people=(world.people[person],), panels=())


# ---------------------------------------------------------------------------------------------- cut-outs


def test_cutouts_come_from_the_simulator_images_by_their_masks():
    data = require(FOLLOWME_DATA / "train", "the Follow-Me training images")
    library = cutouts.load_library(data, counts=(6, 6, 3))
    assert len(library.heroes) == len(library.bystanders) == 6 and len(library.backgrounds) == 3
    for cutout in library.heroes + library.bystanders:
        height, width = cutout.alpha.shape
        assert cutout.pixels.shape == (height, width, 3) and 1.5 <= height / width <= 4.5
        assert cutout.alpha.sum() >= 400 and cutout.alpha[0].any() and cutout.alpha[-1].any()

    for background in library.backgrounds:  # no people, and not filled with the hero's red
        assert background.shape == (256, 256, 3) and cutouts.is_hero_red(background).mean() <= cutouts.MAX_RED_SHARE

    def redness(people: tuple) -> float:
        red, green, blue = np.mean([c.pixels[c.alpha > 0].mean(axis=0) for c in people], axis=0)
        return red - max(green, blue)

    assert redness(library.heroes) > 30 > 10 > redness(library.bystanders)  # the hero wears red, the others do not


def test_a_folder_without_people_is_refused_clearly(tmp_path):
    from conftest import write_pair

    for i in range(3):
        write_pair(tmp_path, i, np.full((64, 64, 3), 90, np.uint8), np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="no heroes and no bystanders"):
        cutouts.load_library(tmp_path)


# ---------------------------------------------------------------------------------------------- paths


def test_walks_turn_pause_keep_their_speed_and_keep_straight_where_asked():
    rng = np.random.default_rng(0)
    walk = random_walk(rng, np.zeros(2), 60.0, TICK_S, 1.2, straight=[(20.0, 30.0)])
    speeds = np.linalg.norm(np.diff(walk.positions, axis=0), axis=1) / TICK_S
    assert np.allclose(speeds[speeds > 0.01], 1.2)
    paused = speeds < 0.01
    assert paused.sum() * TICK_S >= PAUSE_S[0]  # it paused at least once in a minute
    assert np.ptp(np.unwrap(walk.headings)) > math.radians(90)  # and turned
    window = slice(round(20.0 / TICK_S), round(30.0 / TICK_S))
    assert not paused[window].any() and np.ptp(walk.headings[window]) < 1e-9
    assert SPEED_RANGE_M_S == (0.5, 1.5)


# ---------------------------------------------------------------------------------------------- renderer


@pytest.mark.parametrize("distance", [3.0, 8.0, 20.0, 40.0])
def test_a_person_at_distance_d_is_about_1_8_f_over_d_pixels_tall(world, distance):
    hero = world.hero
    camera = camera_at(hero.centre(0.0), distance, PERSON_HEIGHT_M / 2)  # level with its centre
    view = render(alone(world), 0.0, camera)
    rows = np.nonzero((view.truth.mask == TARGET).any(axis=1))[0]
    d = world_to_camera(hero.centre(0.0), camera)[0]
    expected = PERSON_HEIGHT_M * F / d
    assert abs(len(rows) - expected) <= max(2.0, 0.05 * expected), (len(rows), expected)
    assert view.hero_depth_m == pytest.approx(d)


def test_depth_matches_the_geometry(world):
    hero = world.hero
    camera = camera_at(hero.centre(6.0), 7.0, 5.0, heading=0.4)
    view = render(world, 6.0, camera)
    intrinsics = Intrinsics.default(IMAGE_SIZE)
    v, u = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    people = view.truth.mask > 0
    assert (view.truth.mask == TARGET).sum() > 100 and (view.truth.mask == OTHER).any()
    ground = ~people & np.isfinite(view.depth_m)
    for row, col in zip(v[ground][::997], u[ground][::997]):  # every other pixel lies on the ground or a panel
        point = pixel_to_world((col, row), view.depth_m[row, col], intrinsics, camera)
        on_panel = any(abs(np.cross(p.u, p.v) @ (point - p.corner)) < 1e-3 for p in world.panels)
        assert abs(point[2]) < 1e-3 or on_panel
    hero_depth = world_to_camera(hero.centre(6.0), camera)[0]
    assert np.allclose(view.depth_m[view.truth.mask == TARGET], hero_depth)
    sent = parse_sensor_frame(build_sensor_frame(0.0, camera, camera, view.rgb, view.depth_m))  # as the server reads it
    readable = np.isfinite(sent.depth_m)
    assert np.abs(sent.depth_m - view.depth_m)[readable].max() <= 50 / 255 / 2 + 1e-4
    assert not readable[~np.isfinite(view.depth_m)].any()  # above the horizon: no reading (code 255)


def test_the_truth_mask_matches_what_is_drawn(world):
    camera = camera_at(world.hero.centre(6.0), 6.0, 4.0, heading=0.4)
    drawn = render(world, 6.0, camera)
    gone = dataclasses.replace(
        world.hero, walk=dataclasses.replace(world.hero.walk, positions=world.hero.walk.positions + 1e4)
    )
    empty = render(dataclasses.replace(world, people=(gone,)), 6.0, camera)  # the hero too far to be drawn
    changed = np.abs(drawn.rgb.astype(int) - empty.rgb.astype(int)).sum(axis=2) > 0
    mask = drawn.truth.mask > 0
    assert mask.sum() > 500
    assert (mask & ~changed).sum() <= 0.01 * mask.sum()  # every pixel the truth calls a person was drawn over
    edge = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not (changed & ~edge).any()  # and nothing was drawn elsewhere but the cut-outs' soft edges
    rows, cols = np.nonzero(drawn.truth.mask == TARGET)
    centre = pixel_to_world((cols.mean(), rows.mean()), drawn.hero_depth_m, Intrinsics.default(IMAGE_SIZE), camera)
    assert np.allclose(drawn.truth.position, centre) and drawn.truth.visible


def test_nearer_people_and_panels_hide_farther_ones(world):
    hero = world.hero
    camera = camera_at(hero.centre(0.0), 10.0, PERSON_HEIGHT_M / 2, heading=0.0)
    seen = np.count_nonzero(render(alone(world), 0.0, camera).truth.mask == TARGET)
    in_front = dataclasses.replace(
        world.people[1], walk=dataclasses.replace(hero.walk, positions=hero.walk.positions - [5.0, 0.0])
    )
    wall = Panel(
        hero.feet(0.0) + [-3.0, -2.0, 0.0],
        np.array([0.0, 4.0, 0.0]),
        np.array([0.0, 0.0, 4.0]),
        world.panels[0].texture,
    )
    for people, panels in (((hero, in_front), ()), ((hero,), (wall,))):
        view = render(dataclasses.replace(world, people=people, panels=panels), 0.0, camera)
        hidden = np.count_nonzero(view.truth.mask == TARGET)
        assert seen > 200 and hidden < 0.1 * seen, (hidden, seen)
    assert not view.truth.visible and np.allclose(view.truth.position, hero.centre(0.0))  # behind the wall: its centre
    assert np.allclose(view.depth_m[20:128, 128], 7.0, atol=0.01)  # the wall's depth, above the horizon


# ---------------------------------------------------------------------------------------------- drone


def fly_for(drone: Drone, start: float, seconds: float) -> float:
    """Step the drone for ``seconds``, pinged all along; returns the time reached."""
    t = start
    for _ in range(round(seconds / TICK_S)):
        drone.pinged(t)
        drone.step(t, TICK_S)
        t += TICK_S
    return t


def aim(drone: Drone, point: np.ndarray) -> None:
    """Point the drone's gimbal at ``point``."""
    drone.gimbal_yaw, drone.gimbal_pitch = look_angles(drone.poses()[1].position, point)


def test_quadsim_drone_follows_only_a_hero_in_view_and_flies_behind_it(world):
    drone = Drone(alone(world), "quadsim")
    hero = world.hero
    aim(drone, 2 * drone.position - hero.feet(0.0))  # looking away
    assert not drone.in_view(0.0) and not drone.detected(hero.centre(0.0), 0.0) and drone.mode is Mode.PATROL
    aim(drone, hero.feet(0.0))
    assert drone.in_view(0.0) and drone.detected(np.array([99.0, 99.0, 0.0]), 0.0)  # whatever was sent
    assert drone.mode is Mode.FOLLOW
    t = fly_for(drone, 0.0, 12.0)
    back = hero.feet(t) - hero.forward(t) * FOLLOW_DISTANCE_M + [0.0, 0.0, FOLLOW_HEIGHT_M + 1.0]
    assert np.linalg.norm(drone.position - back) < 1.0  # the true hero's back point, not the position sent
    seen = world_to_camera(hero.feet(t) + [0.0, 0.0, 1.0], drone.poses()[1])
    assert seen[0] > 0 and math.hypot(seen[1], seen[2]) < 0.01 * seen[0]  # the gimbal looks at the hero plus 1 m


def test_a_panel_on_the_line_of_sight_makes_the_quadsim_drone_ignore_a_detection(world):
    canopy = world.panels[0]
    centre = canopy.corner + canopy.u / 2 + canopy.v / 2
    t = min(np.arange(0.0, 20.0, 0.1), key=lambda t: np.linalg.norm(world.hero.feet(t)[:2] - centre[:2]))
    hero = world.hero.feet(t)
    for panels, expected in (((canopy,), False), ((), True)):
        drone = Drone(dataclasses.replace(world, people=(world.hero,), panels=panels), "quadsim")
        drone.position = centre + np.array([0.0, 0.0, 3.0])
        aim(drone, hero + [0.0, 0.0, 1.0])
        assert drone.in_view(t) is expected and drone.detected(hero, t) is expected


def test_coords_drone_flies_behind_the_position_it_is_sent(world):
    drone = Drone(world, "coords")
    sent = np.array([5.0, 3.0, 0.9])
    assert drone.detected(sent, 0.0) and drone.mode is Mode.FOLLOW  # no truth to check against
    fly_for(drone, 0.0, 10.0)
    assert np.linalg.norm((drone.position - sent)[:2]) == pytest.approx(FOLLOW_DISTANCE_M, abs=0.05)
    assert drone.position[2] == pytest.approx(sent[2] + FOLLOW_HEIGHT_M, abs=0.05)
    seen = world_to_camera(sent, drone.poses()[1])
    assert seen[0] > 0 and math.hypot(seen[1], seen[2]) < 0.01 * seen[0]  # the gimbal aims at it


def test_lost_and_the_ping_watchdog_send_the_drone_back_to_patrol(world):
    drone = Drone(world, "coords")
    drone.detected(np.array([0.0, 0.0, 0.9]), 0.0)
    assert drone.lost(1.0) and drone.mode is Mode.PATROL and drone.phase is Phase.SWEEP
    assert not drone.lost(1.1)  # already patrolling
    drone.detected(np.array([0.0, 0.0, 0.9]), 2.0)
    drone.pinged(2.0)
    assert not drone.step(2.0 + PING_TIMEOUT_S - 0.05, TICK_S) and drone.mode is Mode.FOLLOW
    assert drone.step(2.0 + PING_TIMEOUT_S + 0.05, TICK_S) and drone.mode is Mode.PATROL


def test_patrol_sweeps_round_then_flies_the_waypoints_and_waits_at_each(world):
    drone = Drone(world, "quadsim")
    yaw0 = drone.gimbal_yaw
    t = 0.0
    while drone.phase is Phase.SWEEP:
        drone.pinged(t)
        drone.step(t, TICK_S)
        t += TICK_S
    assert t == pytest.approx(360.0 / SWEEP_DEG_S, abs=3 * TICK_S)
    assert drone.gimbal_yaw - yaw0 == pytest.approx(360.0, abs=2.0)
    reached = []
    for _ in range(round(30.0 / TICK_S)):
        drone.step(t, TICK_S)
        t += TICK_S
        if drone.phase is Phase.WAIT and (not reached or reached[-1][0] != drone.waypoint):
            reached.append((drone.waypoint, t, drone.position.copy()))
    assert len(reached) >= 3
    assert all(min(np.linalg.norm(world.waypoints - p, axis=1)) < 0.05 for _, _, p in reached)
    assert all(later - earlier > 3.0 for (_, earlier, _), (_, later, _) in zip(reached, reached[1:]))  # it waited
