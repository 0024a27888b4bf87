"""paho's MQTT client with its per-message system calls batched: socket reads by the chunk,
and a batch's PUBACKs as one write.

Both hook into paho 2.x internals (``_create_socket``, ``_packet_queue``); tests/ingest pin
them, so a paho release that moves them fails there, not in production.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

# paho reads each packet with two or three recv calls of a few bytes; one read takes this much.
READ_SIZE: Final = 64 * 1024
_PUBACK: Final = 0x40  # MQTT control packet type 4, flags 0
# A PUBACK with success and no properties is 4 bytes, (0x40, 2, mid): one big-endian uint32.
_PUBACK_WORD: Final = (_PUBACK << 24) | (2 << 16)


class BufferedSocket:
    """A connected socket read ``READ_SIZE`` bytes at a time; paho's small reads are served
    from the buffer. ``pending()`` tells paho's loop that bytes wait here rather than in the
    kernel, as it asks SSL sockets (it then reads without waiting in select)."""

    __slots__ = ("_buffer", "_pos", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        buffer, start = self._buffer, self._pos
        if start >= len(buffer):
            buffer = self._sock.recv(READ_SIZE)  # BlockingIOError when empty, as paho expects
            if not buffer:
                return buffer  # the broker closed the connection
            self._buffer, start = buffer, 0
        end = start + size
        self._pos = end
        return buffer if start == 0 and end >= len(buffer) else buffer[start:end]

    def pending(self) -> int:
        return max(len(self._buffer) - self._pos, 0)

    def send(self, data: bytes | bytearray) -> int:
        return self._sock.send(data)

    def fileno(self) -> int:
        return self._sock.fileno()  # select() asks at every loop

    # close and setblocking are spelled out for paho's SocketLike protocol.
    def close(self) -> None:
        self._sock.close()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)  # anything else paho may ask (not on the hot path)


class Client(mqtt.Client):
    """``paho.mqtt.client.Client`` with buffered reads (plain TCP) and ``ack_many``."""

    def _create_socket(self) -> SocketLike:
        sock = super()._create_socket()
        # TLS and WebSocket connections have their own buffering and ``pending``.
        return BufferedSocket(sock) if type(sock) is socket.socket else sock

    def ack_many(self, mids: Sequence[int]) -> MQTTErrorCode:
        """Acknowledge QoS 1 messages with one write of their PUBACKs, in the given order
        (what ``ack(mid, 1)`` sends for each, without a write and a wake-up of the network
        thread per message). Only with ``manual_ack``."""
        if not mids:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        packets = struct.pack(f">{len(mids)}I", *[_PUBACK_WORD | mid for mid in mids])
        return self._packet_queue(_PUBACK, packets, 0, 0)
