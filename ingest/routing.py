"""Which adapter reads which topic: one MQTT subscription per device format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paho.mqtt.client import topic_matches_sub

from ingest.adapters.registry import (
    ADAPTERS,
    DEFAULT_TOPICS,
    ColumnAdapter,
    column_adapter,
)
from wattwatch.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Route:
    """One subscription: MQTT v5 subscription identifier, topic filter, device format."""

    identifier: int
    topic_filter: str
    format: str
    columns: ColumnAdapter  # the format's parser, returning columns


class Router:
    """Routes each message to its format by subscription identifier (filters may overlap)."""

    def __init__(self, topics: Mapping[str, str]) -> None:
        chosen = dict(topics) or dict(DEFAULT_TOPICS)
        routes = []
        for identifier, (fmt, topic_filter) in enumerate(chosen.items(), start=1):
            if fmt not in ADAPTERS:
                known = ", ".join(sorted(ADAPTERS))
                raise ConfigError(
                    f"WATTWATCH_INGEST_TOPICS: unknown format {fmt!r}; known: {known}"
                )
            if not topic_filter or topic_filter.startswith("$"):
                raise ConfigError(
                    f"WATTWATCH_INGEST_TOPICS: bad topic filter {topic_filter!r} for {fmt}"
                )
            routes.append(Route(identifier, topic_filter, fmt, column_adapter(fmt)))
        self.routes: Sequence[Route] = tuple(routes)
        self._by_id = {route.identifier: route for route in routes}

    def route(self, topic: str, identifiers: Sequence[int] | None) -> Route | None:
        """The route of a message: its lowest subscription identifier, else the first filter
        that matches its topic (brokers without identifiers), else None."""
        if identifiers:
            # One identifier is the rule (filters seldom overlap): no sort for it.
            for identifier in sorted(identifiers) if len(identifiers) > 1 else identifiers:
                route = self._by_id.get(identifier)
                if route is not None:
                    return route
        for route in self.routes:
            if topic_matches_sub(route.topic_filter, topic):
                return route
        return None
