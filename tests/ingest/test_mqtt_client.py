"""paho's client with batched reads and acknowledgements: the same bytes as paho's own, and the
paho internals it relies on."""

from __future__ import annotations

import socket
import struct

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt_client import BufferedSocket, Client


def _queued(client: Client) -> list[bytes]:
    """Make the client record the packets it queues instead of sending them."""
    packets: list[bytes] = []

    def record(command: int, packet: bytes, mid: int, qos: int, info: object = None) -> int:
        packets.append(bytes(packet))
        return 0

    client._packet_queue = record  # type: ignore[method-assign,assignment]
    return packets


def test_the_paho_internals_we_hook_into_are_there() -> None:
    assert callable(mqtt.Client._create_socket)
    assert callable(mqtt.Client._packet_queue)


def test_ack_many_writes_what_ack_writes_for_each_message_in_order() -> None:
    mids = [7, 65535, 1, 300]
    ours = Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    batched = _queued(ours)
    ours.ack_many(mids)
    stock = Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    one_by_one = _queued(stock)
    for mid in mids:
        stock.ack(mid, 1)
    assert batched == [b"".join(one_by_one)]
    assert one_by_one[0] == struct.pack("!BBH", 0x40, 2, 7)  # PUBACK, success


def test_buffered_socket_serves_small_reads_from_one_large_one() -> None:
    a, b = socket.socketpair()
    try:
        b.setblocking(False)
        sock = BufferedSocket(b)
        with pytest.raises(BlockingIOError):
            sock.recv(1)  # nothing yet: paho takes this as "try again later"
        a.sendall(b"\x30\x05hello\x40")
        assert sock.recv(1) == b"\x30"
        assert sock.pending() == 7
        assert sock.recv(1) == b"\x05"
        assert sock.recv(5) == b"hello"
        assert sock.recv(10) == b"\x40"  # what is there, like recv
        assert sock.pending() == 0
        assert sock.fileno() == b.fileno()
        a.close()
        assert sock.recv(1) == b""  # the peer closed
    finally:
        b.close()
