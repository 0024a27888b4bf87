"""The broker side of the ingestor: a paho MQTT v5 client with a persistent session and
manual acknowledgements, handing messages to the batch loop through a bounded buffer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.routing import Route
from wattwatch.errors import WattwatchError

log = logging.getLogger("wattwatch.ingest.mqtt")

# paho numbers packets with 16 bits; more unacknowledged messages than this cannot exist.
MAX_RECEIVE_MAXIMUM = 65535


class BrokerError(WattwatchError):
    """The broker cannot be reached or refused the connection."""


@dataclass(frozen=True, slots=True)
class Message:
    """One received PUBLISH, not yet acknowledged."""

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
        self._cond = threading.Condition()
        self._buffer: list[Message] = []
        self._buffered_bytes = 0  # payload bytes in _buffer
        self._generation = 0
        self._subscribed = threading.Event()
        self._connect_error: str | None = None
        client = mqtt.Client(
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
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client = client

    # --- paho callbacks (network thread) ------------------------------------------------------
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
        with self._cond:
            self._generation += 1
        self._connect_error = None
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

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        ids = getattr(msg.properties, "SubscriptionIdentifier", None) if msg.properties else None
        payload = msg.payload
        message = Message(
            mid=msg.mid,
            qos=msg.qos,
            topic=msg.topic,
            payload=payload if type(payload) is bytes else bytes(payload),  # no copy of bytes
            identifiers=tuple(ids) if isinstance(ids, list) else ((ids,) if ids else ()),
            received_at=datetime.now(UTC),
            received_monotonic=time.monotonic(),
            generation=self._generation,
            redelivered=bool(msg.dup),
        )
        with self._cond:
            self._buffer.append(message)
            self._buffered_bytes += len(message.payload)
            self._cond.notify()

    # --- used by the batch loop ---------------------------------------------------------------
    def connect(self, timeout_s: float = 10.0) -> None:
        """Connect (resuming the persistent session) and wait for the subscriptions."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        self._subscribed.clear()
        try:
            self._client.connect(
                self.host, self.port, keepalive=30, clean_start=False, properties=props
            )
        except OSError as exc:
            raise BrokerError(
                f"cannot connect to the broker {self.host}:{self.port}: {exc}"
            ) from None
        self._client.loop_start()
        if not self._subscribed.wait(timeout_s):
            self._client.loop_stop()
            detail = self._connect_error or "no answer"
            raise BrokerError(f"broker {self.host}:{self.port} did not accept us: {detail}")

    def take(
        self,
        max_messages: int,
        max_wait_s: float,
        stop: threading.Event,
        max_bytes: int | None = None,
    ) -> list[Message]:
        """Up to ``max_messages`` messages, returned once that many arrived, or they hold
        ``max_bytes`` of payload (packs of many readings), or the oldest has waited
        ``max_wait_s`` (or at once when ``stop`` is set)."""
        byte_limit = max_bytes if max_bytes is not None else float("inf")
        with self._cond:
            while not stop.is_set():
                if len(self._buffer) >= max_messages or self._buffered_bytes >= byte_limit:
                    break
                if self._buffer:
                    waited = time.monotonic() - self._buffer[0].received_monotonic
                    if waited >= max_wait_s:
                        break
                    self._cond.wait(max_wait_s - waited)
                else:
                    self._cond.wait(0.2)
            if len(self._buffer) <= max_messages:
                taken, self._buffer, self._buffered_bytes = self._buffer, [], 0
            else:
                taken, self._buffer = self._buffer[:max_messages], self._buffer[max_messages:]
                self._buffered_bytes -= sum(len(m.payload) for m in taken)
            return taken

    def ack(self, messages: Sequence[Message]) -> int:
        """Acknowledge, in arrival order, the messages this connection delivered; returns the
        number acknowledged (the others will be redelivered and absorbed as duplicates)."""
        current = self._generation
        acked = 0
        for message in messages:
            if message.generation != current or message.qos == 0:
                continue
            if self._client.ack(message.mid, message.qos) == MQTTErrorCode.MQTT_ERR_SUCCESS:
                acked += 1
        return acked

    def drop_connection(self) -> None:
        """Disconnect and forget unacknowledged messages: the broker keeps and resends them."""
        self._client.disconnect()
        self._client.loop_stop()
        with self._cond:
            self._buffer.clear()
            self._buffered_bytes = 0

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def buffered(self) -> int:
        with self._cond:
            return len(self._buffer)
