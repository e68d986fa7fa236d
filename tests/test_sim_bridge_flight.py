"""Flight files: round trips, crash-truncated files, corrupt lines."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from sim_bridge.flight import FlightFormatError, FlightWriter, Truth, read_flight
from sim_bridge.geometry import Intrinsics


def payload(i: int) -> dict[str, str]:
    """A frame payload as the simulator sends it (the file keeps it untouched, valid or not)."""
    return {
        "timestamp": f"{1000 + i}.5",
        "pose": "1,234.5000,0.0000,10.0000,0.0000,0.0000,0.0000",
        "rgb_image": "QUJD" * i,
    }


def write(path, frames: int = 5) -> None:
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:4] = 2
    with FlightWriter(path, "test", Intrinsics.default(256)) as writer:
        for i in range(frames):
            truth = Truth(np.array([i, 2.0, 0.5]), True, mask) if i % 2 else None
            index = writer.write_frame(100.0 + i, payload(i), truth)
            writer.write_event(100.05 + i, "object_detected", {"coords": [i, 0.0, 0.0]}, index)


@pytest.mark.parametrize("name", ["f.flight.jsonl", "f.flight.jsonl.gz"])
def test_round_trip(tmp_path, name):
    path = tmp_path / name
    write(path)
    flight = read_flight(path)
    assert flight.header["intrinsics"] == {"fx": 256.0, "fy": 256.0, "cx": 128.0, "cy": 128.0}
    assert flight.header["source"] == "test" and not flight.truncated
    assert [frame.data for frame in flight.frames] == [payload(i) for i in range(5)]
    assert [frame.index for frame in flight.frames] == list(range(5))
    assert [event.frame for event in flight.events] == list(range(5))
    assert flight.frames[1].truth.mask[1, 2] == 2 and flight.frames[1].truth.position.tolist() == [1, 2, 0.5]
    assert flight.frames[0].truth is None and flight.has_truth
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b'{"')


def test_truncated_last_line_is_accepted(tmp_path):
    path = tmp_path / "f.flight.jsonl"
    write(path)
    data = path.read_bytes()
    path.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 20])  # cut inside the last line
    flight = read_flight(path)
    assert flight.truncated and len(flight.frames) == 5 and len(flight.events) == 4


def test_gzip_stream_of_a_crashed_writer_is_readable(tmp_path):
    path = tmp_path / "f.flight.jsonl.gz"
    writer = FlightWriter(path, "crash")
    for i in range(3):
        writer.write_frame(float(i), payload(i))
    snapshot = path.read_bytes()  # as a crash would leave it: sync-flushed, no gzip trailer
    writer.close()
    crashed = tmp_path / "crashed.flight.jsonl.gz"
    crashed.write_bytes(snapshot)
    assert [frame.data for frame in read_flight(crashed).frames] == [payload(i) for i in range(3)]
    crashed.write_bytes(snapshot[:-7])  # and cut inside the last line's compressed data
    flight = read_flight(crashed)
    assert [frame.data for frame in flight.frames] == [payload(i) for i in range(len(flight.frames))]
    assert len(flight.frames) >= 2


@pytest.mark.parametrize("name", ["f.flight.jsonl", "f.flight.jsonl.gz"])
def test_corrupt_line_in_the_middle_names_its_line(tmp_path, name):
    path = tmp_path / name
    write(path)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as file:
        lines = file.read().split(b"\n")
    lines[3] = lines[3][:30]
    with opener(path, "wb") as file:
        file.write(b"\n".join(lines))
    with pytest.raises(FlightFormatError, match=rf"{name}:4: corrupt line") as caught:
        read_flight(path)
    assert caught.value.line == 4


def test_bad_records_and_headers(tmp_path):
    path = tmp_path / "f.flight.jsonl"
    write(path, 2)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], json.dumps({"type": "frame", "index": 0, "t": 1.0}), *lines[1:]]) + "\n")
    with pytest.raises(FlightFormatError, match=r":2: frame line without 'data'"):
        read_flight(path)
    path.write_text(json.dumps({"type": "frame"}) + "\n")
    with pytest.raises(FlightFormatError, match=r":1: expected a quadsim-flight header"):
        read_flight(path)
    path.write_text("")
    with pytest.raises(FlightFormatError, match="empty file"):
        read_flight(path)


def test_corrupt_gzip_data_is_an_error(tmp_path):
    path = tmp_path / "f.flight.jsonl.gz"
    write(path, 40)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    with pytest.raises(FlightFormatError, match=r"f.flight.jsonl.gz:\d+: (gzip data is corrupt|corrupt line)"):
        read_flight(path)


def test_writer_never_overwrites(tmp_path):
    path = tmp_path / "f.flight.jsonl"
    path.write_text("precious")
    with pytest.raises(FileExistsError):
        FlightWriter(path, "test")
    assert path.read_text() == "precious"


def test_decisions_round_trip_and_version_1_files_still_read(tmp_path):
    path = tmp_path / "f.flight.jsonl"
    with FlightWriter(path, "test") as writer:
        index = writer.write_frame(100.0, payload(1))
        writer.write_decision(100.01, {"status": "candidate", "position": None, "candidates": []}, index)
        with pytest.raises(ValueError, match="a decision must have a status"):
            writer.write_decision(100.02, {"position": None}, index)
    flight = read_flight(path)
    assert flight.header["version"] == 2 and len(flight.decisions) == 1
    decision = flight.decisions[0]
    assert (decision.t, decision.frame, decision.data) == (
        100.01,
        0,
        {"status": "candidate", "position": None, "candidates": []},
    )

    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    path.write_text("\n".join([json.dumps({**header, "version": 1}), lines[1]]) + "\n")
    assert len(read_flight(path).frames) == 1
    path.write_text("\n".join([json.dumps({**header, "version": 3}), lines[1]]) + "\n")
    with pytest.raises(FlightFormatError, match="unsupported version 3 \\(expected 1 or 2\\)"):
        read_flight(path)
    path.write_text("\n".join([lines[0], json.dumps({"type": "decision", "t": 1.0})]) + "\n")
    with pytest.raises(FlightFormatError, match="decision line without 'status'"):
        read_flight(path)
