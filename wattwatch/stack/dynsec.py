"""Broker accounts at runtime through Mosquitto's dynamic-security plugin.

Commands are JSON published to ``$CONTROL/dynamic-security/v1``; answers come back on
``…/response``. Each household gets one client (username = client id, so nobody else can take
its session over) and one role whose ACLs name only its own topics; the ingestor gets its own
role. Mosquitto 2.0.11's plugin is the target (no ``getDetails``/``modifyRole`` subtleties used).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from wattwatch.errors import WattwatchError

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = CONTROL_TOPIC + "/response"
# Usernames double as client ids and role names: a small alphabet keeps them out of MQTT
# wildcards, topic separators and shell or log quoting trouble.
USERNAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")
TIMEOUT_S: Final = 10.0


class DynsecError(WattwatchError):
    """The broker refused a dynamic-security command, or could not be reached."""


@dataclass(frozen=True, slots=True)
class TopicGrant:
    """What one role may do: publish to and subscribe to these topic patterns."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...] = ()


def check_username(username: str) -> str:
    """Return ``username`` or raise ValueError naming the allowed alphabet."""
    if not USERNAME_RE.fullmatch(username):
        raise ValueError(
            f"username {username!r}: 3-64 characters of a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    return username


def new_password() -> str:
    return secrets.token_urlsafe(24)


def role_acls(grant: TopicGrant) -> list[dict[str, Any]]:
    """The plugin's ACL list for ``grant`` (everything else stays denied by default)."""
    acls: list[dict[str, Any]] = []
    for topic in grant.publish:
        acls.append({"acltype": "publishClientSend", "topic": topic, "allow": True})
    for topic in grant.subscribe:
        acls.append({"acltype": "subscribePattern", "topic": topic, "allow": True})
        acls.append({"acltype": "publishClientReceive", "topic": topic, "allow": True})
    return acls


class DynsecAdmin:
    """Sends dynamic-security commands as the broker's admin user (one connection per call)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if not parts.username:
            raise DynsecError("the broker admin URL needs a user: mqtt://admin:password@host:port")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.username = unquote(parts.username)
        self.password = unquote(parts.password or "")
        self._lock = threading.Lock()

    def execute(
        self, commands: Sequence[dict[str, Any]], *, tolerate: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        """Run ``commands`` in order; raise DynsecError on the first error not in ``tolerate``
        (substrings of the plugin's error text, e.g. "not found" when deleting twice)."""
        with self._lock:
            responses = self._round_trip(list(commands))
        allowed = tuple(tolerate)
        for response in responses:
            error = response.get("error")
            if error and not any(t in str(error) for t in allowed):
                raise DynsecError(f"{response.get('command')}: {error}")
        return responses

    def _round_trip(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        done = threading.Event()
        subscribed = threading.Event()
        result: list[dict[str, Any]] = []
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{self.username}-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set(self.username, self.password)

        def on_connect(c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
            if not reason.is_failure:
                c.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(_c: object, _u: object, _m: int, reasons: Any, _p: object) -> None:
            if not any(r.is_failure for r in reasons):
                subscribed.set()

        def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
            try:
                body = json.loads(msg.payload)
            except ValueError:
                return
            result.extend(body.get("responses", []))
            if len(result) >= len(commands):
                done.set()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise DynsecError(f"cannot reach the broker {self.host}:{self.port}: {exc}") from None
        client.loop_start()
        try:
            if not subscribed.wait(TIMEOUT_S):
                raise DynsecError("the broker refused the admin user (check its credentials)")
            client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
            if not done.wait(TIMEOUT_S):
                raise DynsecError("no answer from the dynamic-security plugin")
        finally:
            client.disconnect()
            client.loop_stop()
        return result

    # --- accounts -----------------------------------------------------------------------------
    def create_account(
        self, *, username: str, password: str, grant: TopicGrant, client_id: str | None = None
    ) -> None:
        """A role named after ``username`` with ``grant``, and a client bound to ``client_id``
        (default: the username; "" = any client id)."""
        check_username(username)
        self.execute(
            [
                {"command": "createRole", "rolename": username, "acls": role_acls(grant)},
                {
                    "command": "createClient",
                    "username": username,
                    "password": password,
                    # "" leaves the account usable under any client id (tools, simulators)
                    "clientid": username if client_id is None else client_id,
                    "roles": [{"rolename": username}],
                },
            ]
        )

    def ensure_account(
        self, *, username: str, password: str, grant: TopicGrant, client_id: str | None = None
    ) -> None:
        """Like create_account, but an existing account gets the password and ACLs again."""
        check_username(username)
        self.execute(
            [
                {"command": "deleteClient", "username": username},
                {"command": "deleteRole", "rolename": username},
            ],
            tolerate=("not found", "not exist"),
        )
        self.create_account(username=username, password=password, grant=grant, client_id=client_id)

    def disable(self, username: str) -> None:
        """Disable the client: the broker disconnects it at once and refuses it afterwards."""
        self.execute([{"command": "disableClient", "username": check_username(username)}])

    def enable(self, username: str) -> None:
        self.execute([{"command": "enableClient", "username": check_username(username)}])

    def delete_account(self, username: str) -> None:
        """Disconnect and delete the client and its role (missing ones are fine)."""
        check_username(username)
        self.execute(
            [
                {"command": "disableClient", "username": username},
                {"command": "deleteClient", "username": username},
                {"command": "deleteRole", "rolename": username},
            ],
            tolerate=("not found", "not exist"),
        )


def ingestor_grant(share_group: str, topic_filters: Iterable[str]) -> TopicGrant:
    """The ingestor subscribes (shared) to every device format's filter and publishes nothing."""
    filters = tuple(topic_filters)
    shared = tuple(f"$share/{share_group}/{f}" for f in filters)
    return TopicGrant(publish=(), subscribe=filters + shared)


def devices_grant(topic_filters: Iterable[str]) -> TopicGrant:
    """Engineers' own devices and the simulator: publish on every device format's topics."""
    return TopicGrant(publish=tuple(topic_filters))
