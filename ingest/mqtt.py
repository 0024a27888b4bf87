"""The broker side of the ingestor: a paho MQTT v5 client with a persistent session and
manual acknowledgements, handing messages to the batch loop through a bounded buffer.

The batch loop's own thread runs paho's network loop (its external-loop API around our select)
inside ``take``, so that receiving and parsing share one thread: with paho's thread apart, the
two passed the interpreter lock back and forth between the cores at every message. The writer
thread's acknowledgements are queued here and sent by that loop.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.mqtt_client import Client
from ingest.routing import Route
from wattwatch.errors import WattwatchError

log = logging.getLogger("wattwatch.ingest.mqtt")

# paho numbers packets with 16 bits; more unacknowledged messages than this cannot exist.
MAX_RECEIVE_MAXIMUM = 65535
KEEPALIVE_S = 30
# After a lost connection, reconnect after 1 s, then 2, 4… up to 10 s (paho's own loop's way).
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 10.0


class BrokerError(WattwatchError):
    """The broker cannot be reached or refused the connection."""


class Message(NamedTuple):
    """One received PUBLISH, not yet acknowledged (a NamedTuple: one is built per message, for
    a fraction of a frozen dataclass's cost)."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    identifiers: tuple[int, ...]
    # Per message, not per batch: readings without a device clock are stamped with it, and
    # two of them from one channel must not collide on (meter, ts).
    received_at: datetime
    received_monotonic: float
    generation: int  # which connection delivered it: only that connection may acknowledge it
    redelivered: bool  # the broker's DUP flag: sent before and not acknowledged


class MqttConsumer:
    """Receives messages on shared subscriptions and acknowledges them only when told to.

    The broker never has more than ``receive_maximum`` unacknowledged messages out to us, so
    the buffer is bounded by it. A PUBACK withheld on one connection is resent by the broker
    after the next connect, so messages of an older connection are never acknowledged.

    One thread connects, takes and closes (paho runs in it); ``ack`` may come from any other.
    """

    def __init__(
        self,
        *,
        url: str,
        client_id: str,
        share_group: str,
        routes: Sequence[Route],
        receive_maximum: int,
        session_expiry_s: int,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.client_id = client_id
        self.share_group = share_group
        self.routes = tuple(routes)
        self.receive_maximum = max(1, min(receive_maximum, MAX_RECEIVE_MAXIMUM))
        self.session_expiry_s = session_expiry_s
        self._buffer: list[Message] = []
        self._buffered_bytes = 0  # payload bytes in _buffer
        self._generation = 0
        self._subscribed = threading.Event()
        self._connect_error: str | None = None
        self._reconnect = False  # after a lost connection (not after one we dropped)
        self._reconnect_at = 0.0
        self._reconnect_delay = RECONNECT_MIN_S
        # PUBACKs to send, from the writer: (generation, packet ids), and a socket pair that
        # wakes the loop for them.
        self._acks: list[tuple[int, list[int]]] = []
        self._acks_lock = threading.Lock()
        self._wake: tuple[socket.socket, socket.socket] | None = None
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    # --- paho callbacks (in the taking thread, from the loop) ---------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._connect_error = str(reason)
            return
        self._generation += 1
        self._connect_error = None
        self._reconnect_delay = RECONNECT_MIN_S
        # Subscribing again on a resumed session is harmless and heals a lost subscription.
        for route in self.routes:
            props = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            props.SubscriptionIdentifier = route.identifier
            client.subscribe(
                f"$share/{self.share_group}/{route.topic_filter}",
                options=SubscribeOptions(qos=1),
                properties=props,
            )

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self._connect_error = f"subscription refused: {', '.join(failed)}"
        else:
            self._subscribed.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._subscribed.clear()
        if reason.is_failure:
            log.warning("broker connection lost: %s", reason)
        if self._reconnect:
            self._schedule_reconnect(time.monotonic())

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        ids = getattr(msg.properties, "SubscriptionIdentifier", None)
        payload = msg.payload
        message = Message(
            msg.mid,
            msg.qos,
            msg.topic,
            payload if type(payload) is bytes else bytes(payload),  # no copy of bytes
            tuple(ids) if ids else (),  # paho gives a list
            datetime.now(UTC),
            msg.timestamp,  # paho's time.monotonic() at arrival
            self._generation,
            bool(msg.dup),
        )
        self._buffer.append(message)
        self._buffered_bytes += len(payload)

    # --- used by the batch loop ---------------------------------------------------------------
    def connect(self, timeout_s: float = 10.0) -> None:
        """Connect (resuming the persistent session) and wait for the subscriptions."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        self._subscribed.clear()
        self._connect_error = None
        if self._wake is None:
            self._wake = socket.socketpair()
            for end in self._wake:
                end.setblocking(False)
        try:
            self._client.connect(
                self.host, self.port, keepalive=KEEPALIVE_S, clean_start=False, properties=props
            )
        except OSError as exc:
            raise BrokerError(
                f"cannot connect to the broker {self.host}:{self.port}: {exc}"
            ) from None
        deadline = time.monotonic() + timeout_s
        while not self._subscribed.is_set() and self._connect_error is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._client.socket() is None:
                break
            self._pump(min(remaining, 0.2))
        if not self._subscribed.is_set():
            self._client.disconnect()
            detail = self._connect_error or "no answer"
            raise BrokerError(f"broker {self.host}:{self.port} did not accept us: {detail}")
        self._reconnect = True
        self._reconnect_delay = RECONNECT_MIN_S

    def take(
        self,
        max_messages: int,
        max_wait_s: float,
        stop: threading.Event,
        max_bytes: int | None = None,
    ) -> list[Message]:
        """Up to ``max_messages`` messages, returned once that many arrived, or they hold
        ``max_bytes`` of payload (packs of many readings), or the oldest has waited
        ``max_wait_s`` (or at once when ``stop`` is set). Runs the network loop meanwhile."""
        byte_limit = max_bytes if max_bytes is not None else float("inf")
        while not stop.is_set():
            if len(self._buffer) >= max_messages or self._buffered_bytes >= byte_limit:
                break
            if self._buffer:
                waited = time.monotonic() - self._buffer[0].received_monotonic
                if waited >= max_wait_s:
                    break
                self._pump(max_wait_s - waited)
            else:
                self._pump(0.2)
        if len(self._buffer) <= max_messages:
            taken, self._buffer, self._buffered_bytes = self._buffer, [], 0
        else:
            taken, self._buffer = self._buffer[:max_messages], self._buffer[max_messages:]
            self._buffered_bytes -= sum(len(m.payload) for m in taken)
        return taken

    def ack(self, messages: Sequence[Message]) -> int:
        """Acknowledge, in arrival order, the messages this connection delivered; returns the
        number to acknowledge (the others will be redelivered and absorbed as duplicates).

        Any thread: the PUBACKs are queued and the loop sends them (at once if it waits)."""
        current = self._generation
        # QoS 0 needs none; QoS 2 cannot come through our QoS 1 subscriptions.
        mids = [m.mid for m in messages if m.generation == current and m.qos == 1]
        if mids:
            with self._acks_lock:
                self._acks.append((current, mids))
            wake = self._wake
            if wake is not None:
                with contextlib.suppress(OSError):  # BlockingIOError: already woken
                    wake[1].send(b"\0")
        return len(mids)

    def drop_connection(self) -> None:
        """Disconnect and forget unacknowledged messages: the broker keeps and resends them."""
        self._reconnect = False
        self._flush_acks()  # of batches committed before the failure
        self._client.disconnect()
        self._buffer.clear()
        self._buffered_bytes = 0
        with self._acks_lock:
            self._acks.clear()

    def close(self) -> None:
        self._reconnect = False
        self._flush_acks()
        self._client.disconnect()
        if self._wake is not None:
            for end in self._wake:
                end.close()
            self._wake = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # --- the network loop ---------------------------------------------------------------------
    def _pump(self, timeout: float) -> None:
        """One turn of the network loop: wait up to ``timeout`` for the broker or the writer,
        handle every packet received, send what is queued, keep the connection alive."""
        client = self._client
        sock = client.socket()
        if sock is None:
            self._pump_disconnected(timeout)
            return
        pending = getattr(sock, "pending", None)
        readable = bool(pending and pending())
        if not readable:
            wake = [self._wake[0]] if self._wake is not None else []
            wants_write = [sock] if client.want_write() else []
            ready, _, _ = select.select([sock, *wake], wants_write, [], timeout)
            readable = sock in ready
            if wake and wake[0] in ready:
                _drain(wake[0])
        if readable:
            # One loop_read handles one packet; the socket's buffer holds many.
            rc = client.loop_read()
            while (
                rc == MQTTErrorCode.MQTT_ERR_SUCCESS
                and pending is not None
                and pending()
                and client.socket() is sock
            ):
                rc = client.loop_read()
        self._flush_acks()
        if client.want_write():
            client.loop_write()
        client.loop_misc()  # keepalive: PINGREQ when idle, disconnect without PINGRESP

    def _schedule_reconnect(self, now: float) -> None:
        """Next attempt after the current delay; the delay doubles up to the cap."""
        self._reconnect_at = now + self._reconnect_delay
        self._reconnect_delay = min(2 * self._reconnect_delay, RECONNECT_MAX_S)

    def _pump_disconnected(self, timeout: float) -> None:
        """Reconnect when due after a lost connection, else only wait."""
        now = time.monotonic()
        if self._reconnect and now >= self._reconnect_at:
            try:
                self._client.reconnect()  # CONNACK, then on_connect, come through the loop
            except OSError as exc:
                delay = self._reconnect_delay
                log.warning("broker unavailable, retrying in %.0f s: %s", delay, exc)
                self._schedule_reconnect(now)
            return
        if self._reconnect:
            timeout = min(timeout, self._reconnect_at - now)
        wake = [self._wake[0]] if self._wake is not None else []
        if wake:
            ready, _, _ = select.select(wake, [], [], max(timeout, 0.0))
            if ready:
                _drain(wake[0])
        else:
            time.sleep(max(timeout, 0.0))

    def _flush_acks(self) -> None:
        """Send the queued PUBACKs of this connection, one write per committed batch."""
        if not self._acks:
            return
        with self._acks_lock:
            acks, self._acks = self._acks, []
        for generation, mids in acks:
            if generation == self._generation:
                self._client.ack_many(mids)


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # BlockingIOError: nothing left
        sock.recv(4096)
