"""follower.segmenter on OpenVINO (``--runtime openvino``): the same probabilities as TensorFlow, the server's
option end to end, and clear errors for a runtime that is unknown or not installed."""

from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys

import numpy as np
import pytest
from conftest import FOLLOWME_DATA, LEGACY_WEIGHTS, SHIPPED_WEIGHTS, require
from follower_helpers import (
    ServerProcess,
    next_event_named,
    render_frame,
    save_red_model,
    scene_targets,
    sensor_frame,
)
from PIL import Image

import models
from follower import config
from follower.segmenter import RuntimeUnavailableError, Segmenter, choose_runtime
from sim_bridge.client import SimulatorClient

TOLERANCE = 1e-4  # probabilities, OpenVINO in float32 against TensorFlow
TOLERANCE_M = 0.2

needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None,
    reason="openvino is not installed: pip install 'followme[serve-openvino]'",
)


def real_looking_frames(count: int = 8) -> list[np.ndarray]:
    """Simulator-like scenes, and real validation images where ../shared is present."""
    scenes = [render_frame(pose, target)[0] for pose, target, _, _ in scene_targets()]
    images = sorted((FOLLOWME_DATA / "validation" / "images").glob("*.jpeg"))[:count]
    return scenes + [np.asarray(Image.open(path).convert("RGB")) for path in images]


@needs_openvino
@pytest.mark.parametrize("weights", [SHIPPED_WEIGHTS, LEGACY_WEIGHTS], ids=["shipped", "2017"])
def test_openvino_gives_tensorflows_probabilities(weights):
    require(weights.parent, "the model's folder")
    model, card = models.load(weights)
    tensorflow = Segmenter(model, card["input_size"])
    openvino = Segmenter(model, card["input_size"], runtime="openvino", threads=1)
    assert (openvino.runtime, openvino.backend, openvino.device) == ("openvino", "tensorflow", "CPU")
    for frame in real_looking_frames():
        expected = tensorflow.class_probabilities(frame)
        probabilities = openvino.class_probabilities(frame)
        assert probabilities.shape == expected.shape and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=TOLERANCE)


@needs_openvino
def test_openvino_computes_the_softmax_without_its_softmax_kernel(tmp_path):
    segmenter = Segmenter.load(save_red_model(tmp_path / "red", input_size=32), runtime="openvino")
    kernels = {op.get_rt_info()["layerType"].astype(str) for op in segmenter.compiled.get_runtime_model().get_ops()}
    assert "Softmax" not in kernels and "Reduce" not in kernels  # 1x1 convolutions: no max, no sum kernel
    probabilities = segmenter.class_probabilities(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=0, atol=1e-6)


@needs_openvino
def test_each_openvino_call_returns_its_own_array(tmp_path):
    segmenter = Segmenter.load(save_red_model(tmp_path / "red", input_size=32), runtime="openvino")
    red = segmenter(np.full((64, 64, 3), (220, 24, 24), np.uint8))
    segmenter(np.zeros((64, 64, 3), np.uint8))
    assert red.min() > 0.99


@needs_openvino
def test_openvino_sends_no_telemetry(tmp_path):
    """Nothing forks (OpenVINO's telemetry sends from a child process) while a segmenter starts on OpenVINO."""
    model = save_red_model(tmp_path / "red", input_size=32)
    script = (
        "import os\n"
        "forks = []\n"
        "os.register_at_fork(before=lambda: forks.append(1))\n"
        "from follower.segmenter import Segmenter\n"
        f"Segmenter.load({str(model)!r}, runtime='openvino')\n"
        "print('forks', len(forks))\n"
    )
    assert printed(run_python(script)) == "forks 0"


@needs_openvino
def test_the_server_runs_the_network_on_openvino(tmp_path):
    server = ServerProcess(save_red_model(tmp_path / "red"), "--runtime", "openvino", "--tracker", "none")
    try:
        line = server.wait_for_line("waiting for the simulator")
        assert (
            "(input 128x128, openvino (converted from tensorflow) on CPU, inference threads: one per core)" in line
        ), line
        health = server.health()
        assert (health["runtime"], health["backend"], health["device"]) == ("openvino", "tensorflow", "CPU")
        pose, truth, decimal, group = scene_targets()[0]
        with SimulatorClient(server.url) as client:
            client.emit("sensor_frame", sensor_frame(pose, truth, decimal, group))
            detected = next_event_named(client, "object_detected")
        assert np.linalg.norm(np.array(detected["coords"]) - truth) < TOLERANCE_M, (detected, truth)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["m", "--runtime", "tflite"], {}, "RUNTIME must be one of auto, keras, openvino. Received: RUNTIME='tflite'"),
        (["m"], {"FOLLOWER_RUNTIME": "onnx"}, "FOLLOWER_RUNTIME must be one of auto, keras, openvino"),
    ],
)
def test_an_unknown_runtime_is_named(argv, environ, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        config.parse_args(argv, environ=environ)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_runtime_is_case_insensitive_and_auto_by_default_with_the_runtimes_threads():
    settings = config.parse_args(["m"], environ={})[1]
    assert (settings.runtime, settings.inference_threads) == ("auto", None)
    assert config.parse_args(["m", "--runtime", "OpenVINO"], environ={})[1].runtime == "openvino"
    assert config.parse_args(["m"], environ={"FOLLOWER_INFERENCE_THREADS": "2"})[1].inference_threads == 2


def test_auto_chooses_openvino_only_where_it_is_installed_on_an_x86_64_cpu(monkeypatch):
    assert choose_runtime("keras") == "keras" and choose_runtime("openvino") == "openvino"
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "openvino" else None)
    assert choose_runtime("auto") == "openvino"
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert choose_runtime("auto") == "keras"
    monkeypatch.setattr(platform, "machine", lambda: "AMD64")
    assert choose_runtime("auto") == "openvino"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert choose_runtime("auto") == "keras"


def run_python(script: str) -> subprocess.CompletedProcess:
    """``script`` in a fresh Python process: the backend's threads can be set only before the first model loads,
    and OpenVINO's telemetry would fork from there."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def load_served_script(model, call: str, setup: str = "") -> str:
    """A script that runs ``setup``, then ``call`` (`load_served` of ``model``), and prints the runtime and threads
    it returns; warnings go to standard error."""
    return (
        "import logging\n"
        "logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')\n"
        "from follower import segmenter\n"
        "from follower.segmenter import load_served\n"
        f"{setup}"
        f"model = {str(model)!r}\n"
        f"served, threads = {call}\n"
        "print(served.runtime, threads)\n"
    )


def printed(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


@needs_openvino
def test_load_served_gives_each_runtime_its_own_threads(tmp_path):
    model = save_red_model(tmp_path / "red", input_size=32)
    assert printed(run_python(load_served_script(model, "load_served(model, 'openvino')"))) == "openvino 0"
    assert printed(run_python(load_served_script(model, "load_served(model, 'keras')"))) == "keras 1"
    assert printed(run_python(load_served_script(model, "load_served(model, 'openvino', 2)"))) == "openvino 2"


def test_auto_falls_back_to_the_backend_with_a_warning_where_openvino_fails(tmp_path):
    model = save_red_model(tmp_path / "red", input_size=32)
    setup = (
        "def broken(*args):\n"
        "    raise RuntimeError('Cannot convert layer X')\n"
        "segmenter.compile_openvino = broken\n"
        "segmenter.choose_runtime = lambda runtime: 'openvino'\n"
    )
    result = run_python(load_served_script(model, "load_served(model, 'auto')", setup))
    assert printed(result) == "keras 1"
    warning = f"WARNING openvino could not run {model} (RuntimeError: Cannot convert layer X); running it on tensorflow"
    assert warning in result.stderr
    named = run_python(load_served_script(model, "load_served(model, 'openvino')", setup))
    assert named.returncode == 1 and "RuntimeError: Cannot convert layer X" in named.stderr  # asked for: it stands


def test_the_segmenter_names_an_unknown_runtime():
    with pytest.raises(ValueError, match="runtime must be one of keras, openvino. Received: runtime='tflite'"):
        Segmenter(models.build_fcn("e8,c8,d8", 32), 32, runtime="tflite")


def test_openvino_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    with pytest.raises(RuntimeUnavailableError, match=r"pip install 'followme\[serve-openvino\]'"):
        Segmenter(models.build_fcn("e8,c8,d8", 32), 32, runtime="openvino")
