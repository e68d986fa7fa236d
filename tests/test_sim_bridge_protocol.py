"""sim_bridge.protocol: pose and number parsing, frame validation, outgoing events."""

from __future__ import annotations

import base64
import doctest
import struct
import time

import numpy as np
import pytest

from sim_bridge import protocol
from sim_bridge.geometry import Pose
from sim_bridge.protocol import (
    EncodingError,
    FieldTypeError,
    ImageDecodeError,
    ImageTooLargeError,
    MissingFieldError,
    NumberFormatError,
    ProtocolError,
)


def test_docstring_examples():
    assert doctest.testmod(protocol).failed == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0052,0.0052,9.8943,0.0000,0.0000,0.0000", (0.0052, 0.0052, 9.8943, 0, 0, 0)),  # plain (en-US N4)
        (
            "1,234.5678,-2,345.2500,10.0000,0.0000,-190.0000,1,000,000.0000",
            (1234.5678, -2345.25, 10, 0, -190, 1e6),
        ),
        ("0,0052,0,0052,9,8943,0,0000,0,0000,0,0000", (0.0052, 0.0052, 9.8943, 0, 0, 0)),  # comma decimals
        ("1.234,5678,-2.345,2500,10,0000,0,0000,-190,0000,0,0000", (1234.5678, -2345.25, 10, 0, -190, 0)),
        ("1\u00a0234,5678,0,0000,0,0000,0,0000,0,0000,0,0000", (1234.5678, 0, 0, 0, 0, 0)),  # fr-FR spaces
        ("1'234.5678,0.0000,0.0000,0.0000,0.0000,\u22125.0000", (1234.5678, 0, 0, 0, 0, -5)),  # de-CH, minus
        (" 1.5,2.0,3.25,0.0,0.0,-45.0 ", (1.5, 2, 3.25, 0, 0, -45)),  # plain decimals, six of them
    ],
)
def test_parse_pose(text, expected):
    pose = protocol.parse_pose(text)
    assert isinstance(pose, Pose)
    assert pose == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1,2,3",
        "0.0000,0.0000,10.0000,0.0000,0.0000",  # five numbers
        "0.0000,0.0000,10.0000,0.0000,0.0000,0.0000,0.0000",  # seven
        "a,b,c,d,e,f",
        "NaN,0.0000,0.0000,0.0000,0.0000,0.0000",
        "\u221e,0.0000,0.0000,0.0000,0.0000,0.0000",
        "1e999,0,0,0,0,0",
        "0.0000;0.0000;10.0000;0.0000;0.0000;0.0000",
        "1,23.4567,0.0000,0.0000,0.0000,0.0000,0.0000",  # a broken thousands group
        "1,5000,2,2500,3,0000",  # three comma-decimal numbers, not six integers
        "1.5,2,3,0,0,-45",  # plain numbers need their decimal point
    ],
)
def test_parse_pose_rejects_garbage(text):
    with pytest.raises(NumberFormatError) as caught:
        protocol.parse_pose(text, "gimbal_pose")
    assert caught.value.field == "gimbal_pose"
    assert str(caught.value).startswith("gimbal_pose: ")


def test_parse_pose_rejects_non_strings():
    with pytest.raises(FieldTypeError, match="pose: expected a string, got list"):
        protocol.parse_pose([0, 0, 10, 0, 0, 0])


@pytest.mark.parametrize(("decimal", "group"), [(".", ","), (",", "."), (",", "\u202f"), (".", "'")])
def test_format_and_parse_round_trip_in_every_culture(decimal, group):
    rng = np.random.default_rng(2)
    for _ in range(200):
        values = np.round(rng.uniform(-1e6, 1e6, 6) * rng.choice([1, 1e-3, 1e-6], 6), 4)
        parsed = protocol.parse_pose(protocol.format_pose(values, decimal, group))
        np.testing.assert_allclose(parsed, values, atol=1e-9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1504814505.23149", 1504814505.23149), ("1504814505,23149", 1504814505.23149), ("1,234.5", 1234.5)],
)
def test_parse_number(text, expected):
    assert protocol.parse_number(text, "timestamp") == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "soon", "inf", "nan", "1.2.3", "1e999"])
def test_parse_number_rejects_garbage(text):
    with pytest.raises(NumberFormatError, match="timestamp: expected a finite number"):
        protocol.parse_number(text, "timestamp")


def make_frame() -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    rgb = np.zeros((256, 256, 3), np.uint8)
    rgb[:, :, 0] = 200
    depth = np.full((256, 256), 10.0)
    depth[0, 0], depth[0, 1] = 0.0, 80.0
    pose = (1234.5, 0.0, 10.0, 0.0, 0.0, -90.0)
    return protocol.build_sensor_frame(1504814505.23149, pose, pose, rgb, depth), rgb, depth


def test_parse_sensor_frame():
    message, rgb, _ = make_frame()
    assert all(isinstance(value, str) for value in message.values())
    frame = protocol.parse_sensor_frame(message)
    assert frame.timestamp == pytest.approx(1504814505.23149)
    assert frame.pose == frame.gimbal_pose == (1234.5, 0.0, 10.0, 0.0, 0.0, -90.0)
    assert frame.rgb.shape == (256, 256, 3) and frame.rgb.dtype == np.uint8
    assert np.abs(frame.rgb.astype(int) - rgb).max() <= 3  # JPEG
    assert frame.depth_m.shape == (256, 256) and frame.depth_m.dtype == np.float32
    assert np.isnan(frame.depth_m[0, 0]) and np.isnan(frame.depth_m[0, 1])
    assert frame.depth_m[100, 100] == pytest.approx(10.0)


def test_depth_comes_from_the_red_channel_of_rgba():
    import cv2

    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2], bgra[..., 1], bgra[..., 3] = 51, 200, 255  # R = 51 (10 m), G is noise
    png = cv2.imencode(".png", bgra)[1].tobytes()
    np.testing.assert_allclose(protocol.decode_depth_png(png), 10.0)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


JPEG = b64(protocol.encode_jpeg(np.zeros((8, 8, 3), np.uint8)))
PNG = b64(protocol.encode_depth_png(np.ones((8, 8))))


@pytest.mark.parametrize(
    ("change", "error", "field", "reason"),
    [
        ({"timestamp": None}, MissingFieldError, "timestamp", "missing"),
        ({"depth_image": None}, MissingFieldError, "depth_image", "missing"),
        ({"pose": [0, 0, 10, 0, 0, 0]}, FieldTypeError, "pose", "expected a string"),
        ({"rgb_image": 12}, FieldTypeError, "rgb_image", "expected a string"),
        ({"timestamp": "yesterday"}, NumberFormatError, "timestamp", "finite number"),
        ({"pose": "0.0000,0.0000"}, NumberFormatError, "pose", "six numbers"),
        ({"gimbal_pose": "1,0000,2,0000,3,0000"}, NumberFormatError, "gimbal_pose", "six numbers"),
        ({"rgb_image": "not base64!"}, EncodingError, "rgb_image", "not valid base64"),
        ({"depth_image": ""}, EncodingError, "depth_image", "empty"),
        ({"rgb_image": PNG}, ImageDecodeError, "rgb_image", "expected a JPEG image, got PNG data"),
        ({"depth_image": JPEG}, ImageDecodeError, "depth_image", "expected a PNG image, got JPEG data"),
        (
            {"rgb_image": b64(b"hello world")},
            ImageDecodeError,
            "rgb_image",
            "expected a JPEG image, got 11 bytes",
        ),
        (
            {"rgb_image": b64(protocol.JPEG_MAGIC + b"\0" * 64)},
            ImageDecodeError,
            "rgb_image",
            "does not decode",
        ),
        (
            {"depth_image": b64(protocol.PNG_MAGIC + b"\0" * 64)},
            ImageDecodeError,
            "depth_image",
            "does not decode",
        ),
    ],
)
def test_malformed_frames_name_the_field_and_reason(change, error, field, reason):
    message, _, _ = make_frame()
    message.update(change)
    message = {key: value for key, value in message.items() if value is not None}
    with pytest.raises(error) as caught:
        protocol.parse_sensor_frame(message)
    assert isinstance(caught.value, ProtocolError) and isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize("message", [None, "frame", ["sensor_frame"]])
def test_a_frame_must_be_an_object(message):
    with pytest.raises(FieldTypeError, match="sensor_frame: expected a JSON object"):
        protocol.parse_sensor_frame(message)


def test_sixteen_bit_depth_is_rejected():
    import cv2

    png = cv2.imencode(".png", np.zeros((4, 4), np.uint16))[1].tobytes()
    with pytest.raises(ImageDecodeError, match="8-bit"):
        protocol.decode_depth_png(png)


def test_outgoing_events():
    assert protocol.object_detected(np.array([1.0, 2.0, 3.0])) == (
        "object_detected",
        {"coords": [1.0, 2.0, 3.0]},
    )
    assert protocol.object_lost() == ("object_lost", {"data": ""})
    assert protocol.delete_marker() == ("delete_marker", {"id": -1})
    name, marker = protocol.create_box_marker(7, (1, 2, 3))
    assert name == "create_box_marker"
    assert marker == {
        "id": 7,
        "pose": [1.0, 2.0, 3.0, 0.0, 0.0, 0.0],
        "dimensions": [0.7, 0.7, 2.0],
        "color": [0.0, 0.0, 1.0, 0.1],
        "duration": 0.4,
    }


@pytest.mark.parametrize("position", [(np.nan, 0, 0), (0, np.inf, 0), (1, 2)])
def test_events_never_carry_non_finite_coordinates(position):
    with pytest.raises(ValueError, match="position must be 3 finite numbers"):
        protocol.object_detected(position)
    with pytest.raises(ValueError, match="position must be 3 finite numbers"):
        protocol.create_box_marker(0, position)


def declare_size(data: bytes, width: int, height: int) -> bytes:
    """JPEG or PNG bytes with the size in their header replaced (the pixel data stays small)."""
    data = bytearray(data)
    if data.startswith(protocol.PNG_MAGIC):
        data[16:24] = struct.pack(">II", width, height)  # IHDR's CRC no longer matches: never read
    else:
        sof = data.index(b"\xff\xc0")
        data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_image_sizes_are_read_from_the_headers():
    import cv2

    rgb = np.zeros((48, 80, 3), np.uint8)
    progressive = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    exif = protocol.JPEG_MAGIC[:2] + b"\xff\xe1" + struct.pack(">H", 1002) + b"\0" * 1000 + progressive[2:]
    assert protocol.jpeg_size(protocol.encode_jpeg(rgb)) == protocol.jpeg_size(exif) == (80, 48)
    assert protocol.png_size(protocol.encode_depth_png(np.ones((30, 70)))) == (70, 30)


@pytest.mark.parametrize(
    ("field", "width", "height"), [("depth_image", 20000, 20000), ("rgb_image", 16000, 16000), ("rgb_image", 1025, 8)]
)
def test_images_that_declare_too_many_pixels_are_refused_before_decoding(field, width, height):
    message, _, _ = make_frame()
    message[field] = b64(declare_size(base64.b64decode(message[field]), width, height))
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError) as caught:
        protocol.parse_sensor_frame(message)
    assert time.perf_counter() - start < 0.05
    assert str(caught.value) == f"{field}: declares {width}x{height} pixels, more than 1024 a side"


def test_the_limit_is_a_parameter_and_rgb_and_depth_may_differ_in_size():
    message, _, _ = make_frame()
    message["depth_image"] = b64(protocol.encode_depth_png(np.ones((128, 128))))
    frame = protocol.parse_sensor_frame(message, max_image_side=256)
    assert frame.rgb.shape == (256, 256, 3) and frame.depth_m.shape == (128, 128)
    with pytest.raises(ImageTooLargeError, match="rgb_image: declares 256x256 pixels, more than 255 a side"):
        protocol.parse_sensor_frame(message, max_image_side=255)


@pytest.mark.parametrize(
    "data",
    [protocol.JPEG_MAGIC + b"\xe0\x00\x02" * 3000, protocol.JPEG_MAGIC + b"\xe0\x00\x10", protocol.JPEG_MAGIC],
)
def test_a_jpeg_without_a_frame_header_is_refused(data):
    with pytest.raises(ImageDecodeError, match="rgb_image: JPEG does not decode: no frame header"):
        protocol.decode_rgb(data)


def test_overlong_numbers_are_refused_before_parsing():
    message, _, _ = make_frame()
    message["pose"] = "9" * 1_000_000 + message["pose"]
    with pytest.raises(NumberFormatError, match="pose: expected at most 256 characters, got 1000"):
        protocol.parse_sensor_frame(message)
