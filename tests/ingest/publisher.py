"""A test publisher that knows every QoS 1 message reached the broker (waits for each PUBACK)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


class Publisher:
    """Publishes with a bounded number of messages in flight; `flush` waits for every PUBACK."""

    def __init__(
        self, url: str, client_id: str = "test-publisher", max_inflight: int = 1000
    ) -> None:
        parts = urlsplit(url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self._published = 0
        self._acked = 0
        self._cond = threading.Condition()
        self.client.on_publish = self._on_publish
        if parts.username:
            self.client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(_c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
            if reason.is_failure:
                refused.append(str(reason))
            connected.set()

        self.client.on_connect = on_connect
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        if not connected.wait(10) or refused:
            self.client.loop_stop()
            raise ConnectionRefusedError(f"broker refused the publisher: {refused or 'no answer'}")

    def _on_publish(self, _c: object, _u: object, _mid: int, _rc: object, _p: object) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        return self._published - self._acked

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        # Never hold our lock while calling paho: its network thread holds paho's lock
        # while it runs on_publish, which takes ours.
        with self._cond:
            self._published += 1 if qos else 0
            # Keep paho's in-memory queue short: it would otherwise hold everything.
            self._cond.wait_for(lambda: self.pending <= 5000, 60.0)
        self.client.publish(topic, payload, qos=qos)

    def publish_many(self, messages: Iterable[tuple[str, bytes]], qos: int = 1) -> int:
        n = 0
        for topic, payload in messages:
            self.publish(topic, payload, qos)
            n += 1
        return n

    def flush(self, timeout_s: float = 60.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.pending <= 0, timeout_s):
                raise TimeoutError(f"{self.pending} messages not acknowledged by the broker")

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()
