"""Recording connections: one flight per connection, and a write error stops recording with one warning."""

from __future__ import annotations

import errno
import logging

from follower.config import FollowerConfig
from follower.recording import Recorder
from sim_bridge import protocol
from sim_bridge.flight import read_flight


def test_each_connection_gets_its_own_flight(tmp_path):
    recorder = Recorder(tmp_path, intrinsics={"fx": None, "fy": None, "cx": None, "cy": None})
    first, second = {"timestamp": "1.0"}, {"timestamp": "2.0"}
    recorder.frame("a", first)
    recorder.frame("b", second)
    recorder.event("a", protocol.object_lost(), first)
    recorder.event("a", protocol.delete_marker(), {"timestamp": "1.0"})  # not a recorded payload object
    recorder.close_all()
    flights = [read_flight(path) for path in sorted(tmp_path.glob("*.flight.jsonl.gz"))]
    assert sorted(len(flight.events) for flight in flights) == [0, 2]
    (a,) = [flight for flight in flights if flight.events]
    assert a.frames[0].data == first and [event.frame for event in a.events] == [0, None]
    assert a.header["intrinsics"] == {"fx": None, "fy": None, "cx": None, "cy": None}


def test_write_error_stops_recording_with_one_warning(tmp_path, caplog, monkeypatch):
    recorder = Recorder(tmp_path)
    recorder.frame("a", {"timestamp": "1.0"})
    writer = recorder._connections["a"].writer

    def disk_full(_record):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, "_write", disk_full)
    with caplog.at_level(logging.WARNING, logger="follower"):
        for _ in range(3):
            recorder.frame("a", {"timestamp": "2.0"})
            recorder.event("a", protocol.object_lost())
        recorder.frame("b", {"timestamp": "3.0"})
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "Recording stopped" in warnings[0] and "No space left" in warnings[0]
    assert str(writer.path) in warnings[0] and not recorder.active
    assert len(list(tmp_path.glob("*.flight.jsonl.gz"))) == 1


def test_unwritable_directory_stops_recording_with_one_warning(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    recorder = Recorder(blocker / "flights")
    with caplog.at_level(logging.WARNING, logger="follower"):
        recorder.frame("a", {"timestamp": "1.0"})
        recorder.frame("b", {"timestamp": "1.0"})
    assert len(caplog.records) == 1 and "Recording stopped" in caplog.records[0].getMessage()


def test_no_directory_records_nothing(tmp_path):
    recorder = Recorder.from_config(FollowerConfig())
    recorder.frame("a", {})
    assert not recorder.active and not list(tmp_path.iterdir())
