"""A sliding-window limit per client address (one API process; enough for onboarding)."""

from __future__ import annotations

import time
from collections import deque


class RateLimiter:
    """At most ``limit`` events per ``window_s`` for each key."""

    def __init__(self, *, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str) -> float | None:
        """None when allowed (and counted); else seconds to wait."""
        now = time.monotonic()
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window_s:
            events.popleft()
        if len(events) >= self.limit:
            return self.window_s - (now - events[0])
        events.append(now)
        if len(self._events) > 10_000:  # forget idle clients
            self._events = {k: v for k, v in self._events.items() if v}
        return None
