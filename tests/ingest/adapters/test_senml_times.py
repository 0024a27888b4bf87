"""SenML times become µs columns with no datetime per record: the same instants, to the
microsecond, as ``datetime.fromtimestamp`` (absolute) and ``received + timedelta`` (relative)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.adapters import senml
from ingest.reading import EPOCH, ONE_US
from wattwatch.errors import PayloadError

RECEIVED_AT = datetime(2024, 1, 5, 11, 0, 30, 123457, tzinfo=UTC)


def _ts_us(t: float) -> int | None:
    payload = json.dumps([{"n": "p", "u": "W", "v": 1.0, "t": t}]).encode()
    try:
        return senml.parse_columns("senml/x", payload, RECEIVED_AT).ts_us[0]
    except PayloadError:
        return None


@settings(max_examples=3000, deadline=None, database=None)
@given(
    t=st.floats(min_value=2.0**28, max_value=3e11) | st.floats(min_value=-7e10, max_value=2.0**28)
)
def test_times_equal_the_datetime_arithmetic(t: float) -> None:
    try:
        if t >= 2.0**28:
            want: int | None = (datetime.fromtimestamp(t, UTC) - EPOCH) // ONE_US
        else:
            want = (RECEIVED_AT + timedelta(seconds=t) - EPOCH) // ONE_US
    except (OverflowError, ValueError, OSError):
        want = None  # refused as out of range
    assert _ts_us(t) == want
