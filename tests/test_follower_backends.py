"""Every Keras backend serves the same: the shipped model's class probabilities within 1e-4 of TensorFlow's, the
same detections, positions and events, on real validation frames (../shared) and on a synthetic flight; and the
real server under JAX answers a simulator-like client.

A process has one Keras backend, so each backend runs `backend_probe` in a subprocess of its own. CI installs
JAX's CPU build (the ``test`` extra), so JAX is always compared; PyTorch is compared where it is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FOLLOWME_DATA, SHIPPED_WEIGHTS
from follower_helpers import ServerProcess, save_red_model
from test_follower_e2e import run_flight
from test_follower_replay_shipped import real_image_flight

from models.store import keras_path, read_card

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "tensorflow"
PROBABILITY_TOLERANCE = 1e-4
POSITION_TOLERANCE_M = 1e-3
PROBE_TIMEOUT_S = 600
SYNTHETIC, REAL = 0, 1  # the flights, by index

pytestmark = pytest.mark.skipif(
    not keras_path(SHIPPED_WEIGHTS).is_file(), reason=f"shipped weights absent: {keras_path(SHIPPED_WEIGHTS)}"
)


def require_backend(backend: str) -> None:
    """Skip with the reason when ``backend`` is not installed."""
    if importlib.util.find_spec(backend) is None:
        extra = {"jax": "test", "torch": "serve-torch"}.get(backend, "serve")
        pytest.skip(f"{backend} is not installed here (pip install -e '.[{extra}]')")


@pytest.fixture(scope="module")
def flights(tmp_path_factory, synthetic_flight_path) -> list[Path]:
    """The synthetic flight, and a flight of real validation images when ../shared is there (index `REAL`)."""
    if not (FOLLOWME_DATA / "validation").is_dir():
        return [synthetic_flight_path]
    return [synthetic_flight_path, real_image_flight(tmp_path_factory.mktemp("real") / "real.flight.jsonl.gz", 24)]


@pytest.fixture(params=[SYNTHETIC, REAL], ids=["synthetic", "real"])
def flight(request, flights) -> int:
    """The index of a flight in `flights`; the real one skips when ../shared is absent."""
    if request.param >= len(flights):
        pytest.skip(
            f"real images absent: {FOLLOWME_DATA / 'validation'} not found (../shared is absent on this machine)"
        )
    return request.param


@pytest.fixture(scope="module")
def probe(tmp_path_factory, flights):
    """``probe(backend)``: `backend_probe`'s arrays and summary under ``backend``, computed once per backend."""
    directory = tmp_path_factory.mktemp("probes")
    cache: dict[str, dict] = {}

    def run(backend: str) -> dict:
        if backend not in cache:
            require_backend(backend)
            out = directory / f"{backend}.npz"
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
            command = [sys.executable, str(ROOT / "tests" / "backend_probe.py"), str(SHIPPED_WEIGHTS), str(out)]
            done = subprocess.run(
                [*command, *map(str, flights)], env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S
            )
            assert done.returncode == 0, done.stderr[-3000:]
            with np.load(out) as saved:
                cache[backend] = {name: saved[name] for name in saved.files}
            cache[backend]["about"] = json.loads(str(cache[backend]["about"]))
        return cache[backend]

    return run


@pytest.fixture(params=["jax", "torch"])
def other(request, probe) -> dict:
    """A backend other than TensorFlow's probe."""
    return probe(request.param)


def test_the_probe_runs_on_its_own_backend_and_imports_no_other(probe, other):
    reference, about = probe(REFERENCE)["about"], other["about"]
    assert reference["backend"] == REFERENCE and about["device"] == reference["device"] == "CPU"
    assert "tensorflow" not in about["imported"], about["imported"]
    assert about["backend"] in about["imported"]


def test_class_probabilities_match_tensorflow(probe, other, flight):
    reference = probe(REFERENCE)
    difference = np.abs(other[f"probabilities_{flight}"] - reference[f"probabilities_{flight}"]).max()
    assert difference <= PROBABILITY_TOLERANCE, (other["about"]["backend"], difference)


def test_the_same_detections_at_the_same_positions(probe, other, flight):
    reference = probe(REFERENCE)
    located = reference[f"located_{flight}"]
    assert located.sum() >= 5, "too few detections for the comparison to mean something"
    np.testing.assert_array_equal(other[f"located_{flight}"], located)
    np.testing.assert_array_equal(other[f"pixels_{flight}"], reference[f"pixels_{flight}"])
    np.testing.assert_allclose(other[f"centroid_{flight}"], reference[f"centroid_{flight}"], atol=1e-6)
    np.testing.assert_allclose(other[f"position_{flight}"], reference[f"position_{flight}"], atol=POSITION_TOLERANCE_M)


def test_the_same_events_on_the_same_flight(probe, other, flights, flight):
    path = str(flights[flight])
    summary, expected = other["about"]["summaries"][path], probe(REFERENCE)["about"]["summaries"][path]
    for key in ("events", "transitions", "decisions", "visible_not_reported", "frames_rejected"):
        assert summary[key] == expected[key], key
    assert summary["loc_err_m"] == pytest.approx(expected["loc_err_m"], abs=POSITION_TOLERANCE_M)


def test_the_server_under_jax_answers_a_simulator_like_client(tmp_path):
    require_backend("jax")
    from sim_bridge.client import SimulatorClient

    server = ServerProcess(save_red_model(tmp_path / "red"), "--tracker", "none", env={"KERAS_BACKEND": "jax"})
    try:
        line = server.wait_for_line("waiting for the simulator")
        assert "(input 128x128, jax on CPU, inference threads: XLA's own)" in line, line
        with SimulatorClient(server.url) as client:
            run_flight(server, client.emit, client.events)
        health = server.health()
        assert health["backend"] == "jax" and health["device"] == "CPU" and health["inference_threads"] is None
        assert health["frames_failed"] == 0
        assert server.stop() == 0
    finally:
        server.stop()


def test_torch_serves_the_model_uncompiled_where_torch_compile_fails():
    require_backend("torch")
    script = (
        "import numpy as np, torch\n"
        "def broken(module):\n"
        "    def call(*args, **kwargs):\n"
        "        raise RuntimeError('no compiler here')\n"
        "    return call\n"
        "torch.compile = broken\n"
        "from follower.segmenter import Segmenter\n"
        f"segmenter = Segmenter.load({str(SHIPPED_WEIGHTS)!r})\n"
        "assert segmenter.compiled is segmenter.model\n"
        "print(segmenter(np.zeros((256, 256, 3), np.uint8)).shape)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    size = read_card(SHIPPED_WEIGHTS)["input_size"]
    assert done.stdout.strip() == f"({size}, {size})"
    assert "torch.compile failed, serving the model uncompiled: RuntimeError: no compiler here" in done.stderr


def test_torch_compiles_once_and_runs_on_one_thread_whoever_calls_it():
    """The server calls the network from a pool of threads; a recompile would take seconds on each one's first call."""
    require_backend("torch")
    script = (
        "import threading, time, numpy as np, torch\n"
        "from follower.segmenter import Segmenter\n"
        f"segmenter = Segmenter.load({str(SHIPPED_WEIGHTS)!r})\n"
        "seconds, threads = [], set()\n"
        "original = torch.Tensor.numpy\n"
        "def numpy(tensor, *args, **kwargs):\n"
        "    threads.add(threading.get_ident())\n"
        "    return original(tensor, *args, **kwargs)\n"
        "torch.Tensor.numpy = numpy\n"
        "def first_call():\n"
        "    started = time.perf_counter()\n"
        "    segmenter(np.zeros((256, 256, 3), np.uint8))\n"
        "    seconds.append(time.perf_counter() - started)\n"
        "for _ in range(3):\n"
        "    thread = threading.Thread(target=first_call)\n"
        "    thread.start()\n"
        "    thread.join()\n"
        "print(max(seconds), len(threads))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    slowest, threads = done.stdout.split()
    assert float(slowest) < 2.0, done.stdout
    assert threads == "1", "every call runs on the one inference thread"
