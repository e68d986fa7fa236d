"""The fast unmasking gives exactly the bytes of RFC 6455's byte-by-byte rule (what eventlet computes)."""

import os

import pytest

from follower.websocket_mask import apply_mask


def byte_by_byte(data: bytes, mask: bytes, length=None, offset=0) -> bytes:
    """RFC 6455, 5.3: octet i is XORed with octet (offset + i) mod 4 of the key."""
    length = len(data) if length is None else length
    return bytes(data[i] ^ mask[(offset + i) % 4] for i in range(length))


@pytest.mark.parametrize(
    "size, length, offset",
    [(0, None, 0), (1, None, 3), (19_000, None, 0), (1001, 999, 2), (200_003, None, 1), (200_003, 150_001, 3)],
)
def test_matches_the_byte_by_byte_rule(size, length, offset):
    data, mask = os.urandom(size), os.urandom(4)
    assert apply_mask(data, mask, length, offset) == byte_by_byte(data, mask, length, offset)


def test_the_server_unmasks_with_it():
    from eventlet import websocket

    from follower import websocket_mask

    websocket_mask.install()
    assert websocket.RFC6455WebSocket._apply_mask is apply_mask


def test_a_message_whose_fragments_exceed_the_limit_fails_the_connection():
    from eventlet import websocket

    from follower.websocket_mask import LimitedMessage

    message = LimitedMessage(2, max_frame_length=10)
    message.push(b"x" * 6)
    with pytest.raises(websocket.FailedConnectionError, match="above the length limit"):
        message.push(b"x" * 6)


def test_building_the_server_leaves_eventlet_alone(monkeypatch):
    """Only `follower.serve` installs the fixes, where it starts eventlet's web server."""
    from eventlet import websocket

    from follower.config import FollowerConfig
    from follower.server import FollowerServer

    class Message(websocket.RFC6455WebSocket.Message):  # whichever was there before
        pass

    monkeypatch.setattr(websocket.RFC6455WebSocket, "_apply_mask", staticmethod(byte_by_byte))
    monkeypatch.setattr(websocket.RFC6455WebSocket, "Message", Message)
    FollowerServer(lambda rgb: rgb, FollowerConfig(), {"model": "none"})
    assert websocket.RFC6455WebSocket._apply_mask is byte_by_byte
    assert websocket.RFC6455WebSocket.Message is Message
