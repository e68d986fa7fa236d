"""A closed-loop flight (`sim_bridge.fly`) drawn from above: paths, modes and events, as a PNG.

The drone's path is coloured by its mode at each frame (PATROL grey, FOLLOW on the hero green, FOLLOW on a
bystander or nothing orange), the hero's path is red (bold where it is visible), the bystanders' thin grey, walls
dark lines and canopies brown boxes. Marked: the hero's first visible frame (star), FOLLOW entered (triangle, on the
hero green, else orange), ``object_lost`` (cross), the ping watchdog's return to PATROL (square).
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from sim_bridge.flight_score import FOLLOW, HERO, FlightLog, visible
from sim_bridge.world import World

MODE_COLOURS = {"PATROL": "0.6", HERO: "tab:green", "other": "tab:orange"}


def plot_flight(world: World, log: FlightLog, path: str | os.PathLike, min_pixels: int) -> None:
    """Draw ``log``'s flight over ``world`` into the PNG at ``path``; raises OSError."""
    figure = Figure(figsize=(8, 8), dpi=100)
    axes = figure.add_subplot()
    times = np.array([frame.t for frame in log.frames])
    for person in world.people[1:]:
        track = np.array([person.walk.position(t) for t in times])
        axes.plot(track[:, 0], track[:, 1], color="0.75", linewidth=0.8)
    hero = np.array([frame.hero[:2] for frame in log.frames])
    seen = np.array([visible(frame, min_pixels) for frame in log.frames])
    axes.plot(hero[:, 0], hero[:, 1], color="tab:red", linewidth=1.0, label="hero")
    axes.scatter(hero[seen, 0], hero[seen, 1], color="tab:red", s=4, label="hero visible")
    for panel in world.panels:
        corners = np.array(
            [panel.corner, panel.corner + panel.u, panel.corner + panel.u + panel.v, panel.corner + panel.v]
        )
        if abs(panel.v[2]) < 1e-9:  # a canopy, flat
            axes.fill(*corners[:, :2].T, color="saddlebrown", alpha=0.4)
        else:  # a wall, upright
            axes.plot(*corners[:2, :2].T, color="k", linewidth=3)
    drone = np.array([frame.drone[:2] for frame in log.frames])
    colours = [MODE_COLOURS[HERO if frame.on == HERO else "other"] if frame.mode == FOLLOW else MODE_COLOURS["PATROL"]
               for frame in log.frames]  # fmt: skip
    for i in range(1, len(drone)):
        axes.plot(drone[i - 1 : i + 1, 0], drone[i - 1 : i + 1, 1], color=colours[i], linewidth=2)
    axes.plot([], [], color=MODE_COLOURS[HERO], linewidth=2, label="drone: FOLLOW on the hero")
    axes.plot([], [], color=MODE_COLOURS["other"], linewidth=2, label="drone: FOLLOW on another or nothing")
    axes.plot([], [], color=MODE_COLOURS["PATROL"], linewidth=2, label="drone: PATROL")
    if seen.any():
        x, y = hero[np.argmax(seen)]
        axes.scatter(x, y, marker="*", s=200, color="gold", edgecolor="k", zorder=5, label="first visible")
    for switch in log.switches:
        x, y = drone[min(int(round(switch.t / log.frame_interval_s)), len(drone) - 1)]
        if switch.mode == FOLLOW:
            colour = MODE_COLOURS[HERO if switch.toward == HERO else "other"]
            axes.scatter(x, y, marker="^", s=120, color=colour, edgecolor="k", zorder=6)
        else:
            marker = "s" if switch.cause == "ping timeout" else "X"
            axes.scatter(x, y, marker=marker, s=120, color="tab:blue", edgecolor="k", zorder=6)
    axes.scatter([], [], marker="^", color="w", edgecolor="k", label="FOLLOW entered")
    axes.scatter([], [], marker="X", color="tab:blue", edgecolor="k", label="object_lost")
    axes.set_aspect("equal")
    axes.set_xlabel("x (m)")
    axes.set_ylabel("y (m)")
    axes.set_title(f"{log.behaviour} flight, {len(log.frames)} frames, seen from above")
    axes.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
