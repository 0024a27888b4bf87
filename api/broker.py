"""Households' broker accounts, or nothing when the broker has no dynamic security.

Wraps the blocking dynamic-security admin in threads so the event loop never waits on MQTT.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from wattwatch.stack.dynsec import DynsecAdmin, TopicGrant, new_password


class BrokerAccounts:
    """``enabled`` is False when no admin URL is known: households then get no credentials."""

    def __init__(self, admin_url: str | None, *, device_host: str, device_port: int) -> None:
        self._admin = DynsecAdmin(admin_url) if admin_url else None
        self.device_host = device_host
        self.device_port = device_port

    @property
    def enabled(self) -> bool:
        return self._admin is not None

    async def create(self, username: str, grant: TopicGrant) -> str | None:
        """Create the account; returns its password (shown once), None when disabled."""
        if self._admin is None:
            return None
        password = new_password()
        await asyncio.to_thread(
            self._admin.ensure_account, username=username, password=password, grant=grant
        )
        return password

    async def disable(self, username: str) -> None:
        if self._admin is not None:
            await asyncio.to_thread(self._admin.disable, username)

    async def delete(self, username: str) -> None:
        if self._admin is not None:
            await asyncio.to_thread(self._admin.delete_account, username)


def device_endpoint(mqtt_url: str, host: str, port: int) -> tuple[str, int]:
    """Host and port devices should use: the settings' override, else the broker's own."""
    parts = urlsplit(mqtt_url)
    return host or parts.hostname or "127.0.0.1", port or parts.port or 1883
