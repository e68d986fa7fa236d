"""The simulator's messages: parse ``sensor_frame``, build the events it acts on.

See ../shared/quadsim/PROTOCOL.md for the transport. Simulator → server, event ``sensor_frame``, every value a
JSON string:

- ``timestamp``: seconds since the Unix epoch (``"1504814505.23149"``).
- ``pose``, ``gimbal_pose``: ``x,y,z,roll,pitch,yaw`` (metres, degrees; see `sim_bridge.geometry`), each
  number written by C#'s ``ToString("N4")``: four decimals, culture-dependent marks. Accepted: ``1,234.5678``
  (thousands separators: comma, space, no-break spaces, apostrophes), ``1.234,5678`` (comma decimals), a
  leading ``-`` or Unicode minus, and plain numbers with a decimal point (``1.5``) when there are exactly six.
- ``rgb_image``: base64 of a JPEG, RGB (256x256 from the simulator).
- ``depth_image``: base64 of a PNG, RGBA; depth in the red channel, ``depth_m = R * 50 / 255``.

An image's size is read from its header (the JPEG's SOF marker, the PNG's IHDR chunk) before any pixel is
decoded: one that declares a side over ``max_image_side`` (`MAX_IMAGE_SIDE`, 1024 px, four times the
simulator's) is refused, so a small file that declares 20000x20000 pixels cannot make the decoder allocate
gigabytes. RGB and depth may differ in size.

Server → simulator (`Event` values, name and JSON payload): ``object_detected`` ``{"coords": [x, y, z]}``,
``object_lost`` ``{"data": ""}``, ``create_box_marker`` ``{"id", "pose", "dimensions", "color",
"duration"}``, ``delete_marker`` ``{"id"}``. Coordinates are world metres, ROS convention, always finite.

A frame that cannot be used raises a `ProtocolError` subclass naming the field and the reason. The
simulator-side builders (`format_pose`, `encode_jpeg`, `encode_depth_png`, `build_sensor_frame`) write frames
exactly as the simulator does, for tests and recorded or synthetic flights.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import cv2
import numpy as np

from sim_bridge.geometry import Pose, decode_depth, encode_depth

SENSOR_FRAME = "sensor_frame"
SENSOR_FRAME_FIELDS = ("timestamp", "pose", "gimbal_pose", "rgb_image", "depth_image")
POSE_FIELDS = ("pose", "gimbal_pose")

MARKER_DIMENSIONS = (0.7, 0.7, 2.0)
MARKER_COLOR = (0.0, 0.0, 1.0, 0.1)
MARKER_DURATION_S = 0.4

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_SIDE = 1024
MAX_NUMBER_CHARS = 64  # a timestamp
MAX_POSE_CHARS = 256  # six N4 numbers: about 100 characters
JPEG_MAX_SEGMENTS = 1000  # segments (and fill bytes) read before the SOF: a real JPEG has a dozen

# JPEG markers (ITU T.81, B.1.1.3): start of scan, those without a length, the frames' SOF0..SOF15 but for
# DHT (C4), JPG (C8) and DAC (CC), which share their range.
_JPEG_SOS = 0xDA
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ProtocolError(ValueError):
    """A message that cannot be used: ``field`` names the offending field, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MissingFieldError(ProtocolError):
    """A required field is absent."""


class FieldTypeError(ProtocolError):
    """A field (or the message itself) has the wrong JSON type."""


class NumberFormatError(ProtocolError):
    """A number or pose that does not parse, has the wrong count, or is not finite."""


class EncodingError(ProtocolError):
    """A field that is not valid base64."""


class ImageDecodeError(ProtocolError):
    """Bytes that are not an image of the expected format, or that fail to decode."""


class ImageTooLargeError(ProtocolError):
    """An image whose header declares more pixels than the server decodes (a decompression bomb)."""


@dataclass(frozen=True)
class SensorFrame:
    """A decoded ``sensor_frame``: poses, RGB (H, W, 3) uint8, depth (H', W') float32 metres, NaN for none."""

    timestamp: float
    pose: Pose
    gimbal_pose: Pose
    rgb: np.ndarray
    depth_m: np.ndarray


class Event(NamedTuple):
    """An outgoing socket.io event: its name and its JSON payload."""

    name: str
    data: dict


# ---------------------------------------------------------------------------------------------- parsing

_MINUS = "-\u2212"
_SPACES = "\u00a0\u202f '\u2019"


def _n4_number(group: str, decimal: str) -> str:
    """A regex for one ``N4`` number with the given thousands and decimal marks."""
    return rf"[{_MINUS}]?\s?(?:\d{{1,3}}(?:[{re.escape(group)}]\d{{3}})+|\d+){re.escape(decimal)}\d{{4}}"


_PLAIN_NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# In a pose, a plain number must have a decimal point: "1,5000,2,2500,3,0000" is three numbers, not six.
_PLAIN_POSE_NUMBER = r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?"


def _marked_to_float(text: str, decimal: str) -> float:
    """Convert a number written with thousands separators and ``decimal`` as its mark (``-1.234,5678``)."""
    sign = -1.0 if text[0] in _MINUS else 1.0
    return sign * float("".join(c for c in text if c.isdigit() or c == decimal).replace(decimal, "."))


# (regex of six numbers joined by commas, converter): N4 with '.' decimals, N4 with ',' decimals, plain.
_POSE_FORMATS = tuple(
    (re.compile(",".join([f"({number})"] * 6), re.ASCII), convert)
    for number, convert in (
        (_n4_number("," + _SPACES, "."), partial(_marked_to_float, decimal=".")),
        (_n4_number("." + _SPACES, ","), partial(_marked_to_float, decimal=",")),
        (_PLAIN_POSE_NUMBER, float),
    )
)
# One number: plain, '.' decimals with thousands separators, ',' decimals.
_SCALAR_FORMATS = (
    (re.compile(_PLAIN_NUMBER, re.ASCII), float),
    (
        re.compile(rf"[{_MINUS}]?\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?", re.ASCII),
        partial(_marked_to_float, decimal="."),
    ),
    (
        re.compile(rf"[{_MINUS}]?(?:\d{{1,3}}(?:\.\d{{3}})+|\d+),\d+", re.ASCII),
        partial(_marked_to_float, decimal=","),
    ),
)


def parse_pose(text: Any, field: str = "pose") -> Pose:
    """Parse ``x,y,z,roll,pitch,yaw`` written with ``N4`` in any culture (see the module docstring).

    >>> parse_pose("1,234.5678,0.0000,10.0000,0.0000,-90.0000,0.0000")
    Pose(x=1234.5678, y=0.0, z=10.0, roll=0.0, pitch=-90.0, yaw=0.0)
    >>> parse_pose("1.234,5678,0,0000,10,0000,0,0000,-90,0000,0,0000")
    Pose(x=1234.5678, y=0.0, z=10.0, roll=0.0, pitch=-90.0, yaw=0.0)
    """
    stripped = _short_string(text, field, MAX_POSE_CHARS).strip()
    for pattern, convert in _POSE_FORMATS:
        match = pattern.fullmatch(stripped)
        if match:
            values = [convert(number) for number in match.groups()]
            break
    else:
        raise NumberFormatError(field, f"expected six numbers x,y,z,roll,pitch,yaw, got {_preview(text)}")
    if not all(math.isfinite(value) for value in values):
        raise NumberFormatError(field, f"numbers must be finite, got {_preview(text)}")
    return Pose(*values)


def parse_number(text: Any, field: str) -> float:
    """Parse one finite number: plain, with thousands separators (``1,234.5``) or a decimal comma."""
    stripped = _short_string(text, field, MAX_NUMBER_CHARS).strip()
    for pattern, convert in _SCALAR_FORMATS:
        if pattern.fullmatch(stripped):
            value = convert(stripped)
            if math.isfinite(value):
                return value
            break
    raise NumberFormatError(field, f"expected a finite number, got {_preview(text)}")


def _short_string(text: Any, field: str, limit: int) -> str:
    """``text``, checked to be a string of at most ``limit`` characters."""
    if not isinstance(text, str):
        raise FieldTypeError(field, f"expected a string, got {type(text).__name__}")
    if len(text) > limit:
        raise NumberFormatError(field, f"expected at most {limit} characters, got {len(text)}")
    return text


def decode_base64(text: Any, field: str) -> bytes:
    """The bytes of a base64 string field."""
    if not isinstance(text, str):
        raise FieldTypeError(field, f"expected a base64 string, got {type(text).__name__}")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise EncodingError(field, f"not valid base64 ({error})") from error
    if not data:
        raise EncodingError(field, "empty")
    return data


def decode_rgb(data: bytes, field: str = "rgb_image", max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) from JPEG bytes that declare at most ``max_side`` pixels a side."""
    image = _imdecode(data, field, JPEG_MAGIC, "JPEG", jpeg_size, max_side, cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_depth_png(data: bytes, field: str = "depth_image", max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """Depth in metres (H, W) float32, NaN where there is no reading, from the simulator's RGBA PNG (at most
    ``max_side`` pixels a side)."""
    image = _imdecode(data, field, PNG_MAGIC, "PNG", png_size, max_side, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8:
        raise ImageDecodeError(field, f"expected 8-bit channels, got {image.dtype}")
    red = image if image.ndim == 2 else image[:, :, 2]  # OpenCV orders channels B, G, R(, A)
    return decode_depth(red)


def png_size(data: bytes, field: str = "depth_image") -> tuple[int, int]:
    """(width, height) that PNG bytes declare in their IHDR chunk, the first after the signature."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageDecodeError(field, f"PNG does not decode: no IHDR chunk first ({len(data)} bytes)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def jpeg_size(data: bytes, field: str = "rgb_image") -> tuple[int, int]:
    """(width, height) that JPEG bytes declare in their SOF marker, found by skipping the segments before it
    (at most `JPEG_MAX_SEGMENTS`) by their lengths."""
    offset = 2  # after SOI
    for _ in range(JPEG_MAX_SEGMENTS):
        if offset + 4 > len(data) or data[offset] != 0xFF:
            break
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
        elif marker in _JPEG_STANDALONE:
            offset += 2
        elif marker in _JPEG_SOF and offset + 9 <= len(data):
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        elif marker == _JPEG_SOS:
            break
        else:
            offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    raise ImageDecodeError(field, f"JPEG does not decode: no frame header (SOF) before byte {offset}")


def _imdecode(
    data: bytes,
    field: str,
    magic: bytes,
    kind: str,
    declared_size: Callable[[bytes, str], tuple[int, int]],
    max_side: int,
    flags: int,
) -> np.ndarray:
    """OpenCV's decoding of ``kind`` (JPEG, PNG) bytes that must start with ``magic`` and whose header declares
    (``declared_size``) at most ``max_side`` pixels a side, checked before any pixel is decoded; errors name
    ``field``."""
    if not data.startswith(magic):
        raise ImageDecodeError(field, f"expected a {kind} image, got {_describe_bytes(data)}")
    width, height = declared_size(data, field)
    if width > max_side or height > max_side:
        raise ImageTooLargeError(field, f"declares {width}x{height} pixels, more than {max_side} a side")
    if not width or not height:
        raise ImageDecodeError(field, f"declares {width}x{height} pixels")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.size == 0:
        raise ImageDecodeError(field, f"{kind} does not decode ({len(data)} bytes)")
    return image


def parse_sensor_frame(message: Any, max_image_side: int = MAX_IMAGE_SIDE) -> SensorFrame:
    """Validate and decode a ``sensor_frame`` payload, refusing images that declare more than
    ``max_image_side`` pixels a side before decoding them; raises a `ProtocolError` naming the field."""
    if not isinstance(message, dict):
        raise FieldTypeError(SENSOR_FRAME, f"expected a JSON object, got {type(message).__name__}")
    for field in SENSOR_FRAME_FIELDS:
        if field not in message:
            raise MissingFieldError(field, "missing")
        if not isinstance(message[field], str):
            raise FieldTypeError(field, f"expected a string, got {type(message[field]).__name__}")
    return SensorFrame(
        timestamp=parse_number(message["timestamp"], "timestamp"),
        pose=parse_pose(message["pose"], "pose"),
        gimbal_pose=parse_pose(message["gimbal_pose"], "gimbal_pose"),
        rgb=decode_rgb(decode_base64(message["rgb_image"], "rgb_image"), max_side=max_image_side),
        depth_m=decode_depth_png(decode_base64(message["depth_image"], "depth_image"), max_side=max_image_side),
    )


def _preview(text: str, limit: int = 60) -> str:
    """``repr`` of a string, shortened for a log line."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _describe_bytes(data: bytes) -> str:
    """What a few leading bytes look like, for an error message."""
    kind = "PNG data" if data.startswith(PNG_MAGIC) else "JPEG data" if data.startswith(JPEG_MAGIC) else None
    return kind or f"{len(data)} bytes starting {data[:8]!r}"


# ---------------------------------------------------------------------------------------------- events


def _finite_vector(name: str, values: Sequence[float], length: int) -> list[float]:
    """``values`` as a list of ``length`` finite floats, or ValueError naming the argument."""
    vector = [float(v) for v in values]
    if len(vector) != length or not all(math.isfinite(v) for v in vector):
        raise ValueError(f"{name} must be {length} finite numbers. Received: {name}={values!r}")
    return vector


def object_detected(position: Sequence[float]) -> Event:
    """``object_detected`` at a world position (x, y, z): the simulator switches to Follow."""
    return Event("object_detected", {"coords": _finite_vector("position", position, 3)})


def object_lost() -> Event:
    """``object_lost``: the simulator switches to Patrol (it ignores the payload)."""
    return Event("object_lost", {"data": ""})


def create_box_marker(
    marker_id: int,
    position: Sequence[float],
    orientation_deg: Sequence[float] = (0.0, 0.0, 0.0),
    dimensions: Sequence[float] = MARKER_DIMENSIONS,
    color: Sequence[float] = MARKER_COLOR,
    duration_s: float = MARKER_DURATION_S,
) -> Event:
    """``create_box_marker``: a box of ``dimensions`` (m) in RGBA ``color`` for ``duration_s`` (-1: ever)."""
    pose = _finite_vector("position", position, 3) + _finite_vector("orientation_deg", orientation_deg, 3)
    return Event(
        "create_box_marker",
        {
            "id": int(marker_id),
            "pose": pose,
            "dimensions": _finite_vector("dimensions", dimensions, 3),
            "color": _finite_vector("color", color, 4),
            "duration": float(duration_s),
        },
    )


def delete_marker(marker_id: int = -1) -> Event:
    """``delete_marker`` for one marker id, or all of them with -1."""
    return Event("delete_marker", {"id": int(marker_id)})


# ------------------------------------------------------------------------------------------ simulator side


def format_pose(pose: Sequence[float], decimal: str = ".", group: str = ",") -> str:
    """A pose as the simulator writes it: six ``N4`` numbers joined by commas, in a culture's marks.

    >>> format_pose((1234.5678, 0, 10, 0, -90, 0), decimal=",", group=".")
    '1.234,5678,0,0000,10,0000,0,0000,-90,0000,0,0000'
    """
    table = str.maketrans({",": group, ".": decimal})
    return ",".join(f"{float(value):,.4f}".translate(table) for value in pose)


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 image (H, W, 3)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 image. Received: rgb.shape={np.shape(rgb)}")
    return data.tobytes()


def encode_depth_png(depth_m: np.ndarray) -> bytes:
    """The simulator's RGBA depth PNG for depth in metres (H, W): the code in R, G and B, alpha 255."""
    codes = encode_depth(depth_m)
    bgra = np.dstack([codes, codes, codes, np.full_like(codes, 255)])
    ok, data = cv2.imencode(".png", bgra)
    if not ok:
        raise ValueError(f"depth_m must be an (H, W) array. Received: depth_m.shape={np.shape(depth_m)}")
    return data.tobytes()


def build_sensor_frame(
    timestamp: float,
    pose: Sequence[float],
    gimbal_pose: Sequence[float],
    rgb: np.ndarray,
    depth_m: np.ndarray,
    decimal: str = ".",
    group: str = ",",
) -> dict[str, str]:
    """A ``sensor_frame`` payload exactly as the simulator sends it: every value a string."""
    return {
        "timestamp": f"{timestamp:.5f}".replace(".", decimal),
        "pose": format_pose(pose, decimal, group),
        "gimbal_pose": format_pose(gimbal_pose, decimal, group),
        "rgb_image": base64.b64encode(encode_jpeg(rgb)).decode("ascii"),
        "depth_image": base64.b64encode(encode_depth_png(depth_m)).decode("ascii"),
    }
