"""``python -m benchmarks.flights --quick``: the closed-loop benchmark through the real server and the shipped model,
in CI's time."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import FOLLOWME_DATA, ROOT, SHIPPED_WEIGHTS, require

from benchmarks.flights import EPISODES, TRACKERS
from sim_bridge.flight_score import SCORE_KEYS
from sim_bridge.fly import FRAME_INTERVAL_S

QUICK_TIMEOUT_S = 600


def test_quick_flights_run_both_trackers_through_the_real_server_and_print_one_table(tmp_path):
    require(SHIPPED_WEIGHTS.with_suffix(".keras"), "the shipped model")
    require(FOLLOWME_DATA / "train", "the Follow-Me training images (the people the network must find)")
    out = tmp_path / "flights.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.flights", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_S,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [r["tracker"] for r in results["runs"].values()] == list(TRACKERS)
    for run_result in results["runs"].values():
        assert list(run_result["episodes"]) == list(EPISODES)
        for episode, behaviours in run_result["episodes"].items():
            flight = behaviours["quadsim"]
            assert set(SCORE_KEYS) <= set(flight)
            frames = round(flight["flown_s"] / FRAME_INTERVAL_S)
            assert flight["frames"] == {"answered": frames, "dropped": 0, "rejected": 0}, episode  # lockstep
        crowd = run_result["episodes"]["crowd of 8"]["quadsim"]
        assert crowd["acquisition_s"] is not None and crowd["follow_share"] > 0.5  # the network does find the hero
    rendered = results["honesty"]["rendered"]
    assert sum(bucket["images"] for bucket in rendered["buckets"].values()) > 0 and rendered["far"]["images"] > 0
    table = run.stdout
    assert table.count("| quadsim |") == len(EPISODES) * len(TRACKERS) and "Renderer honesty" in table
    assert table.count("FOLLOW share ≥ 90%") == len(EPISODES)  # the targets, on the default tracker's rows
