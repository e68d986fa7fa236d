"""Flight files: a recorded (or synthetic) conversation with the simulator, one JSON object per line.

A flight is JSON Lines, gzip-compressed when the name ends in ``.gz``. Every line is an object with a
``type``:

- line 1, ``header``: ``{"type": "header", "format": "quadsim-flight", "version": 1, "created": ISO 8601 UTC,
  "source": free text, "intrinsics": {"fx", "fy", "cx", "cy"}}``; an intrinsic that is null is derived from the
  depth image's width W (fx = fy = W, cx = cy = W / 2), as the follower does.
- ``frame``: ``{"type": "frame", "index": n, "t": receive time, "data": {...}}``, ``data`` the ``sensor_frame``
  payload exactly as received (base64 strings untouched; any JSON value: a malformed frame is recorded as it
  came too), ``index`` counting from 0, ``t`` in seconds since the Unix epoch. Optional
  ``"truth": {"position": [x, y, z] | null, "visible": bool, "mask": base64 PNG}``: the target's world
  position (metres, ROS convention; see `sim_bridge.synth` for its definition), whether any of it is in view,
  and a class mask (uint8 PNG, one value per pixel of the depth image: 0 background, 1 other people, 2 target).
- ``event``: ``{"type": "event", "t": send time, "name": ..., "data": {...}, "frame": n | null}``: an event
  the server sent, ``frame`` the index of the frame it answers when known.
- ``decision`` (since version 2): ``{"type": "decision", "t": time, "frame": n | null, "status": ...,
  "position": [x, y, z] | null, "misses": n, "outlier": bool, "candidates": [{"position": [x, y, z],
  "hits": n}]}``: what the follower's tracker made of a frame, written before the events it sent for it
  (`follower.tracking.Decision`: ``status`` one of idle, candidate, confirmed, tracking, coasting, holding,
  lost; ``position`` the one sent). Readers keep every field but ``type``, ``t`` and ``frame`` as they are.

Lines are in the order things happened. Writers append one line at a time and flush it (a gzip stream with a
sync flush), so a crash loses at most the line being written; `read_flight` accepts a truncated last line and
a truncated gzip stream, and raises `FlightFormatError` naming the line for anything else that is wrong.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import math
import os
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np

from sim_bridge.geometry import Intrinsics

FORMAT = "quadsim-flight"
VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no decision lines
GZIP_SUFFIX = ".gz"
READ_CHUNK_BYTES = 1 << 16


class FlightError(Exception):
    """A flight file that cannot be read or written."""


class FlightFormatError(FlightError):
    """A flight file whose content is not a flight: ``line`` is the 1-based line number (0: the file)."""

    def __init__(self, path: str | os.PathLike, line: int, reason: str) -> None:
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {reason}")
        self.path = str(path)
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Truth:
    """What a frame really shows: the target's world position (3,) or None, visibility, class mask (H, W)."""

    position: np.ndarray | None
    visible: bool
    mask: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``truth`` object of a frame line."""
        record: dict[str, Any] = {
            "position": None if self.position is None else [float(c) for c in self.position],
            "visible": bool(self.visible),
        }
        if self.mask is not None:
            record["mask"] = encode_mask(self.mask)
        return record

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Truth:
        """Parse a ``truth`` object; raises ValueError for a malformed one."""
        position = record.get("position")
        if position is not None:
            position = np.asarray(position, dtype=np.float64)
            if position.shape != (3,) or not np.all(np.isfinite(position)):
                raise ValueError(f"truth position must be 3 finite numbers. Received: position={record['position']}")
        mask = record.get("mask")
        return cls(position, bool(record.get("visible", False)), None if mask is None else decode_mask(mask))


@dataclass(frozen=True)
class RecordedFrame:
    """A ``sensor_frame`` as received: its index, receive time (epoch seconds), payload (any JSON value: a
    malformed frame's too) and optional truth."""

    index: int
    t: float
    data: Any
    truth: Truth | None = None


@dataclass(frozen=True)
class RecordedEvent:
    """An event the server sent: send time (epoch seconds), name, payload, index of the frame it answers."""

    t: float
    name: str
    data: dict[str, Any]
    frame: int | None = None


@dataclass(frozen=True)
class RecordedDecision:
    """A tracker's decision on a frame: time (epoch seconds), its fields (``status``, ...), the frame's index."""

    t: float
    data: dict[str, Any]
    frame: int | None = None


@dataclass
class Flight:
    """A whole flight file: header, frames, events and decisions in order; ``truncated`` when its end was cut
    off."""

    header: dict[str, Any]
    frames: list[RecordedFrame] = field(default_factory=list)
    events: list[RecordedEvent] = field(default_factory=list)
    decisions: list[RecordedDecision] = field(default_factory=list)
    truncated: bool = False

    @property
    def has_truth(self) -> bool:
        """Whether any frame carries truth."""
        return any(frame.truth is not None for frame in self.frames)


def encode_mask(mask: np.ndarray) -> str:
    """A uint8 class mask (H, W) as base64 PNG."""
    ok, data = cv2.imencode(".png", np.asarray(mask, dtype=np.uint8))
    if not ok:
        raise ValueError(f"mask must be an (H, W) array. Received: mask.shape={np.shape(mask)}")
    return base64.b64encode(data.tobytes()).decode("ascii")


def decode_mask(text: str) -> np.ndarray:
    """The uint8 class mask (H, W) of a base64 PNG; raises ValueError when it does not decode."""
    mask = cv2.imdecode(np.frombuffer(base64.b64decode(text, validate=True), np.uint8), cv2.IMREAD_UNCHANGED)
    if mask is None or mask.ndim != 2:
        raise ValueError("truth mask is not a single-channel PNG")
    return mask


def intrinsics_record(intrinsics: Intrinsics | Mapping[str, float | None] | None) -> dict[str, float | None]:
    """The header's ``intrinsics`` object; None, or a mapping with missing keys, means "derived from W"."""
    if isinstance(intrinsics, Intrinsics):
        intrinsics = {"fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx, "cy": intrinsics.cy}
    intrinsics = intrinsics or {}
    return {key: None if (value := intrinsics.get(key)) is None else float(value) for key in ("fx", "fy", "cx", "cy")}


def is_gzip_path(path: str | os.PathLike) -> bool:
    """Whether a flight at ``path`` is gzip-compressed (its name ends in ``.gz``)."""
    return str(path).endswith(GZIP_SUFFIX)


# ---------------------------------------------------------------------------------------------- writing


class FlightWriter:
    """Appends a flight to a new file, one flushed line at a time; OSError propagates to the caller.

    The header is written on opening. Use as a context manager, or call `close`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        source: str,
        intrinsics: Intrinsics | Mapping[str, float | None] | None = None,
        created: datetime.datetime | None = None,
    ) -> None:
        self.path = Path(path)
        self.frames = 0
        self._raw: BinaryIO = open(self.path, "xb")  # noqa: SIM115 (closed by close())
        self._gzip: gzip.GzipFile | None = None
        try:
            if is_gzip_path(self.path):
                # No name and a zero mtime in the gzip header: the same flight gives the same bytes.
                self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
            created = created or datetime.datetime.now(datetime.timezone.utc)
            self._write(
                {
                    "type": "header",
                    "format": FORMAT,
                    "version": VERSION,
                    "created": created.astimezone(datetime.timezone.utc).isoformat(),
                    "source": source,
                    "intrinsics": intrinsics_record(intrinsics),
                }
            )
        except BaseException:
            self.close()
            raise

    def write_frame(self, t: float, data: Any, truth: Truth | None = None) -> int:
        """Append a received ``sensor_frame`` payload (any JSON value, as received); returns its frame index."""
        record: dict[str, Any] = {"type": "frame", "index": self.frames, "t": float(t), "data": data}
        if truth is not None:
            record["truth"] = truth.to_json()
        self._write(record)
        self.frames += 1
        return self.frames - 1

    def write_event(self, t: float, name: str, data: Any, frame: int | None = None) -> None:
        """Append an event sent to the simulator, with the index of the frame it answers when known."""
        self._write({"type": "event", "t": float(t), "name": name, "data": data, "frame": frame})

    def write_decision(self, t: float, decision: Mapping[str, Any], frame: int | None = None) -> None:
        """Append a tracker's decision (``status`` and its other fields), with the index of its frame."""
        if "status" not in decision:
            raise ValueError(f"a decision must have a status. Received: decision={dict(decision)!r}")
        self._write({"type": "decision", "t": float(t), "frame": frame, **decision})

    def close(self) -> None:
        """Finish the gzip stream (if any) and close the file; safe to call twice."""
        try:
            if self._gzip is not None:
                self._gzip.close()
        finally:
            self._raw.close()

    def __enter__(self) -> FlightWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, record: Mapping[str, Any]) -> None:
        """One line, flushed to the operating system (a gzip sync flush: the line can be decompressed)."""
        line = json.dumps(record, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"
        if self._gzip is None:
            self._raw.write(line)
        else:
            self._gzip.write(line)
            self._gzip.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()


# ---------------------------------------------------------------------------------------------- reading


def read_flight(path: str | os.PathLike) -> Flight:
    """Read a whole flight file; raises FlightError (OSError or bad content, with the line number)."""
    path = Path(path)
    flight: Flight | None = None
    try:
        for number, line, last in _lines(path):
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                if last and not line.endswith(b"\n") and flight is not None:
                    flight.truncated = True
                    break
                raise FlightFormatError(path, number, f"corrupt line ({error})") from None
            if flight is None:
                flight = Flight(_parse_header(path, number, record))
            else:
                _add_record(flight, path, number, record)
    except OSError as error:
        raise FlightError(f"{path}: cannot read ({error.strerror or error})") from error
    if flight is None:
        raise FlightFormatError(path, 0, "empty file, not a flight")
    return flight


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(1-based number, bytes with their newline, whether it is the last line) of a plain or gzip file.

    A gzip stream cut short (no end-of-stream marker) ends where its data ends; data that does not
    decompress raises FlightFormatError naming the line it would belong to.
    """
    buffer = b""
    number = 0
    held: bytes | None = None
    chunks = _decompressed_chunks(path)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            break
        except zlib.error as error:
            raise FlightFormatError(path, number + 1, f"gzip data is corrupt ({error})") from None
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if held is not None:
                yield number, held, False
            number += 1
            held = line + b"\n"
    if held is not None:
        yield number, held, not buffer
    if buffer:
        yield number + 1, buffer, True


def _decompressed_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes in chunks, gunzipped when its name ends in ``.gz`` (several members allowed)."""
    with open(path, "rb") as file:
        if not is_gzip_path(path):
            yield from iter(lambda: file.read(READ_CHUNK_BYTES), b"")
            return
        decompressor = zlib.decompressobj(wbits=31)
        for chunk in iter(lambda: file.read(READ_CHUNK_BYTES), b""):
            data = chunk
            while data:
                yield decompressor.decompress(data)
                data = decompressor.unused_data if decompressor.eof else b""
                if decompressor.eof:
                    decompressor = zlib.decompressobj(wbits=31)


def _parse_header(path: Path, number: int, record: Any) -> dict[str, Any]:
    """The header record, checked: the right format and a version this reader knows."""
    if not isinstance(record, dict) or record.get("type") != "header" or record.get("format") != FORMAT:
        raise FlightFormatError(path, number, f"expected a {FORMAT} header line, got {_preview(record)}")
    if record.get("version") not in READABLE_VERSIONS:
        expected = " or ".join(map(str, READABLE_VERSIONS))
        raise FlightFormatError(path, number, f"unsupported version {record.get('version')!r} (expected {expected})")
    return record


def _add_record(flight: Flight, path: Path, number: int, record: Any) -> None:
    """Append a frame or event record to ``flight``, or raise FlightFormatError naming the line."""
    kind = record.get("type") if isinstance(record, dict) else None
    try:
        if kind == "frame":
            truth = record.get("truth")
            flight.frames.append(
                RecordedFrame(
                    index=int(record["index"]),
                    t=_finite(record["t"]),
                    data=record["data"],
                    truth=None if truth is None else Truth.from_json(truth),
                )
            )
        elif kind == "event":
            frame = record.get("frame")
            flight.events.append(
                RecordedEvent(
                    _finite(record["t"]), str(record["name"]), record["data"], None if frame is None else int(frame)
                )
            )
        elif kind == "decision":
            frame = record.get("frame")
            data = {key: value for key, value in record.items() if key not in ("type", "t", "frame")}
            if "status" not in data:
                raise KeyError("status")
            flight.decisions.append(RecordedDecision(_finite(record["t"]), data, None if frame is None else int(frame)))
        else:
            raise ValueError(f"expected a frame, event or decision line, got {_preview(record)}")
    except KeyError as error:
        raise FlightFormatError(path, number, f"{kind} line without {error}") from None
    except (TypeError, ValueError) as error:
        raise FlightFormatError(path, number, str(error)) from None


def _finite(value: Any) -> float:
    """A finite float, or ValueError."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite time. Received: t={value!r}")
    return number


def _preview(record: Any, limit: int = 80) -> str:
    """A record shortened for an error message."""
    text = json.dumps(record)
    return text if len(text) <= limit else text[:limit] + "..."
