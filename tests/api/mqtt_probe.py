"""A small MQTT v5 client for the isolation tests: records CONNACK, SUBACK and messages."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Probe:
    def __init__(self, port: int, *, username: str, password: str, client_id: str) -> None:
        self.connack: Any = None
        self.disconnected: Any = None
        self.suback: list[Any] = []
        self.messages: list[tuple[str, bytes]] = []
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.username_pw_set(username, password)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        c.reconnect_delay_set(60, 120)  # never reconnect during a test
        self.client = c
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        self._connected.wait(5)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.disconnected = reason

    def _on_subscribe(self, _c: Any, _u: Any, _m: Any, reasons: Any, _p: Any) -> None:
        self.suback = list(reasons)
        self._subscribed.set()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> bool:
        """True when the broker granted the subscription."""
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        self._subscribed.wait(5)
        return bool(self.suback) and not any(r.is_failure for r in self.suback)

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def settle(seconds: float = 0.5) -> None:
    time.sleep(seconds)
