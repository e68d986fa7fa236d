"""Damaged model files stop `python -m follower.serve` with one clear line, no traceback, and status 1."""

from __future__ import annotations

import shutil
import zipfile

import h5py
import numpy as np
import pytest
from follower_helpers import ServerProcess
from test_models_legacy import write_legacy_pair

from models import build_fcn, save


@pytest.fixture
def good_model(tmp_path):
    """A small, whole native model with its card."""
    save(build_fcn("e8,c8,d8", 32), tmp_path / "good", {"arch": "e8,c8,d8", "input_size": 32})
    return tmp_path / "good"


def truncated(path, size=1000):
    path.write_bytes(path.read_bytes()[:size])


def without_config(path):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != "config.json"}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def damaged_keras(model, how):
    """``model``'s .keras file damaged ``how``; returns the path to serve and the line expected."""
    native = model.with_name(model.name + ".keras")
    if how == "truncated":
        truncated(native)
        cause = "not a zip archive"
    elif how == "random bytes":
        native.write_bytes(np.random.default_rng(0).bytes(4000))
        cause = "not a zip archive"
    else:
        without_config(native)
        cause = "the archive has no config.json"
    return model, f"Cannot read model '{native}': not a valid .keras file ({cause}"


@pytest.mark.parametrize("how", ["truncated", "random bytes", "config removed"])
def test_a_damaged_keras_file_is_named_as_damaged(good_model, how):
    served, expected = damaged_keras(good_model, how)
    assert_refused(served, expected)


def test_a_broken_card_names_the_card_line_and_column(good_model):
    card = good_model.with_name(good_model.name + ".card.json")
    card.write_text('{"arch": "e8,c8,d8",\n  "input_size": 32,,\n}')
    assert_refused(good_model, f"Cannot read model card '{card}': Expecting property name enclosed in double quotes: "
                               "line 2 column 20")  # fmt: skip


def test_damaged_legacy_weights_name_the_file_and_the_mismatch(tmp_path):
    weights, _ = write_legacy_pair(tmp_path, np.random.default_rng(0))
    (tmp_path / "short").mkdir()
    shutil.copy(tmp_path / "config_weights", tmp_path / "short" / "config_weights")
    shutil.copy(weights, tmp_path / "short" / "weights")
    truncated(tmp_path / "short" / "weights", 3000)
    assert_refused(tmp_path / "short" / "weights", f"Cannot read legacy weights '{tmp_path / 'short' / 'weights'}'")
    with h5py.File(weights, "a") as f:  # a layer whose stored kernel does not fit the config
        del f["out"]["out_inner/kernel:0"]
        f["out"]["out_inner/kernel:0"] = np.zeros((1, 1, 7, 5), np.float32)
    assert_refused(weights, f"'{weights}': layer 'out' weight 'kernel' is missing or has shape (1, 1, 7, 5), "
                            "expected (1, 1, 7, 3)")  # fmt: skip


def test_debug_shows_the_traceback(good_model):
    served, expected = damaged_keras(good_model, "truncated")
    server = ServerProcess(served, "--log-level", "DEBUG")
    assert server.process.wait(60) == 1
    server.wait_for_line(expected)
    server.wait_for_line("Traceback (most recent call last)")


def assert_refused(model, expected: str) -> None:
    """Serving ``model`` exits with status 1 and one error line that starts with ``expected``, no traceback."""
    server = ServerProcess(model)
    assert server.process.wait(60) == 1
    server.stop()
    errors = [line for line in server.lines if " ERROR " in line]
    assert len(errors) == 1 and errors[0].split("ERROR follower: ", 1)[1].startswith(expected), server.lines
    assert not any("Traceback" in line for line in server.lines), server.lines
