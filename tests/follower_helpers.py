"""Shared by the follower tests: a red-pixel model, simulator-like scenes, the server in a subprocess.

The simulator's client is `sim_bridge.client.SimulatorClient`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import servers
from sim_bridge import client, geometry, protocol

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SIZE = 256
BACKGROUND_RGB = (96, 120, 88)
TARGET_RGB = (220, 24, 24)
BACKGROUND_DEPTH_M = 40.0


def save_red_model(path: Path, input_size: int = 128) -> Path:
    """Save a real Keras model whose 1x1 softmax conv calls strongly red pixels the target (class 2)."""
    import keras

    import models

    inputs = keras.Input((input_size, input_size, 3), name="image")
    conv = keras.layers.Conv2D(3, 1, activation="softmax", name="classes")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    kernel[0, 0, :, 2] = [10.0, -10.0, -10.0]  # inputs are scaled to [-1, 1]: red is (1, -1, -1)
    bias = np.array([0.0, -10.0, -10.0], np.float32)
    conv.set_weights([kernel, bias])
    models.save(model, path, {"arch": "red-1x1", "input_size": input_size})
    return path


def render_frame(
    gimbal_pose: geometry.Pose, target_world: np.ndarray | None, half_size: tuple[int, int] = (7, 15)
) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, depth metres) as the gimbal camera sees a flat scene with the target as a red block.

    The block is centred on the pixel nearest to where the target projects, at the target's z-depth, with a
    few empty (0) and saturated (255) depth pixels inside it, as the simulator's depth images have.
    """
    rng = np.random.default_rng(0)
    rgb = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    rgb[:] = BACKGROUND_RGB
    rgb = np.clip(rgb.astype(np.int16) + rng.integers(-12, 13, rgb.shape), 0, 255).astype(np.uint8)
    depth = np.full((IMAGE_SIZE, IMAGE_SIZE), BACKGROUND_DEPTH_M)
    if target_world is not None:
        intrinsics = geometry.Intrinsics.default(IMAGE_SIZE)
        u, v, d = geometry.world_to_pixel(target_world, intrinsics, gimbal_pose)
        col, row = round(u), round(v)
        half_w, half_h = half_size
        rows, cols = slice(row - half_h, row + half_h + 1), slice(col - half_w, col + half_w + 1)
        rgb[rows, cols] = TARGET_RGB
        depth[rows, cols] = d
        depth[row - half_h, col - half_w : col] = 0.0  # no reading
        depth[row + half_h, col : col + half_w] = 60.0  # saturated
    return rgb, depth


def sensor_frame(
    gimbal_pose: geometry.Pose, target_world: np.ndarray | None, decimal: str = ".", group: str = ","
) -> dict[str, str]:
    """A ``sensor_frame`` payload for `render_frame`'s scene, strings as the simulator writes them."""
    rgb, depth = render_frame(gimbal_pose, target_world)
    return protocol.build_sensor_frame(time.time(), gimbal_pose, gimbal_pose, rgb, depth, decimal, group)


# Gimbal poses and target positions (world, metres) the scenes use: (pose, target, decimal mark, group mark).
SCENES = [
    (geometry.Pose(0.0, 0.0, 10.0, 0.0, 45.0, 0.0), np.array([9.0, 0.5, 0.9]), ".", ","),
    (geometry.Pose(1234.5, -2345.25, 15.0, 2.0, 30.0, 120.0), None, ".", ","),
    (geometry.Pose(-20.0, 7.0, 12.0, -1.5, 40.0, -200.0), None, ",", "."),
    (geometry.Pose(3.0, -4.0, 8.0, 0.0, 60.0, 75.0), None, ",", "\u00a0"),
]


def scene_targets() -> list[tuple[geometry.Pose, np.ndarray, str, str]]:
    """The scenes, each target placed slightly off the image centre and 1 m above the ground under it."""
    scenes = []
    intrinsics = geometry.Intrinsics.default(IMAGE_SIZE)
    for i, (pose, target, decimal, group) in enumerate(SCENES):
        if target is None:
            ray = geometry.back_project((110.0 + 12 * i, 150.0 - 7 * i), 1.0, intrinsics)
            ray_world = pose.rotation @ ray
            scale = (pose.z - 0.9) / -ray_world[2]  # reach z = 0.9 m
            target = pose.position + scale * ray_world
        scenes.append((pose, target, decimal, group))
    return scenes


def next_event_named(simulator: client.SimulatorClient, name: str) -> dict:
    """The data of the client's next event called ``name``; fails after 10 s without any event."""
    while True:
        event, data = simulator.events.get(timeout=10)
        if event == name:
            return data


class ServerProcess(servers.ServerProcess):
    """`benchmarks.servers.ServerProcess` with tests/ on the server's path, for the stand-in servers
    (``module="slow_server"``, ...)."""

    def __init__(
        self,
        weights: Path | str,
        *args: str,
        port: int | None = None,
        module: str = "follower.serve",
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(weights, *args, module=module, port=port, env=env, path=[ROOT / "tests"])


class SimulatorClient(client.SimulatorClient):
    """`sim_bridge.client.SimulatorClient` connected to a local server's port."""

    def __init__(self, port: int) -> None:
        super().__init__(f"http://127.0.0.1:{port}")


def serve_stand_in(make_segment, description: str) -> int:
    """Run the real follower server (``sys.argv`` as its command line) around a stand-in network.

    ``make_segment`` builds the network from the positional argument, which the real server reads as the
    weights path.
    """
    import logging

    import eventlet

    from follower import config as config_module
    from follower.serve import LOG_FORMAT, serve_until_stopped
    from follower.server import FollowerServer

    args, config = config_module.parse_args(sys.argv[1:])
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT, stream=sys.stderr)
    server = FollowerServer(make_segment(args.weights), config, {"model": description})
    listener = eventlet.listen((config.host, config.port))
    logging.getLogger("follower").info("Serving %s; waiting for the simulator", description)
    return serve_until_stopped(server, listener)
