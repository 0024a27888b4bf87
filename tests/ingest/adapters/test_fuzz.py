"""Property tests: whatever arrives, an adapter returns valid readings or raises PayloadError.

Inputs per adapter: random bytes, random JSON trees built from the format's own field names,
mutated real payloads (the case folders), and random topics. About 2,000 examples per adapter.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.adapters.registry import ADAPTERS, Adapter
from ingest.reading import QUANTITIES, UNITS, Reading
from wattwatch.errors import PayloadError

CASES = Path(__file__).parent / "cases"
RECEIVED_AT = datetime(2024, 1, 5, 11, 0, 30, tzinfo=UTC)
FORMATS = sorted(ADAPTERS)


def fuzz_settings(examples: int) -> settings:
    """Examples per test and format; the four tests add up to 2,000 per adapter."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # no .hypothesis folder in the shared tree
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def check(parse: Adapter, topic: str, payload: bytes) -> None:
    """The adapter contract: a non-empty list of well-formed readings, or PayloadError."""
    reason: str | None = None
    readings: list[Reading] = []
    try:
        readings = parse(topic, payload, RECEIVED_AT)
    except PayloadError as exc:
        reason = str(exc)
    if reason is not None:
        assert reason, "a dead-letter reason must not be empty"
        return
    assert isinstance(readings, list)
    assert readings, "an empty result must be a PayloadError"
    for reading in readings:
        assert isinstance(reading, Reading)
        assert isinstance(reading.device_id, str)
        assert reading.device_id
        assert isinstance(reading.channel, str)
        assert reading.channel
        assert type(reading.value) is float
        assert math.isfinite(reading.value)
        assert reading.ts.utcoffset() == timedelta(0)  # aware and UTC
        assert reading.unit is None or reading.unit in UNITS
        assert reading.quantity is None or reading.quantity in QUANTITIES
        assert type(reading.cumulative) is bool


@cache
def samples(fmt: str) -> tuple[tuple[str, bytes], ...]:
    """(topic, payload) of the format's case folders, valid and bad."""
    out = []
    for case in sorted(p for p in (CASES / fmt).iterdir() if p.is_dir()):
        topic = (case / "topic.txt").read_text().strip()
        (payload,) = [p for p in case.iterdir() if p.name.startswith("payload.")]
        out.append((topic, payload.read_bytes()))
    return tuple(out)


def _keys(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            _keys(value, found)
    elif isinstance(node, list):
        for item in node:
            _keys(item, found)


@cache
def field_names(fmt: str) -> tuple[str, ...]:
    """Every JSON key seen in the format's cases: random trees then reach deep code paths."""
    found: set[str] = set()
    for _, payload in samples(fmt):
        try:
            _keys(json.loads(payload), found)
        except ValueError:
            continue
    return tuple(sorted(found))


@cache  # building a recursive strategy is costly; mutations draw from it many times
def json_values(keys: tuple[str, ...]) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(10**30), max_value=10**30)
        | st.floats()  # NaN and ±inf included: json.dumps writes them as NaN/Infinity
        | st.text(max_size=20)
        | st.sampled_from(["2024-01-05T12:00:00", "E240705120000", "012345678", "1e999", ""])
    )
    key = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=5),
        max_leaves=10,
    )


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


@st.composite
def mutated(draw: st.DrawFn, value: Any, keys: tuple[str, ...]) -> Any:
    """Replace, delete or descend into one random spot of a JSON value."""
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["replace", "delete", "descend"]))
        copy = dict(value)
        if action == "delete":
            del copy[key]
        elif action == "replace":
            copy[key] = draw(json_values(keys))
        else:
            copy[key] = draw(mutated(value[key], keys))
        return copy
    if isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        copy_list = list(value)
        copy_list[index] = draw(mutated(value[index], keys))
        return copy_list
    return draw(json_values(keys))


@pytest.mark.parametrize("fmt", FORMATS)
@fuzz_settings(700)
@given(data=st.data())
def test_random_bytes_and_topics(fmt: str, data: st.DataObject) -> None:
    topic = data.draw(
        st.text(alphabet=st.sampled_from("ab/+#:_-SENSORtelestatus0123 é"), max_size=30)
        | st.sampled_from([t for t, _ in samples(fmt)])
    )
    check(ADAPTERS[fmt], topic, data.draw(st.binary(max_size=200)))


@pytest.mark.parametrize("fmt", FORMATS)
@fuzz_settings(400)
@given(data=st.data())
def test_random_json_trees(fmt: str, data: st.DataObject) -> None:
    topic = data.draw(st.sampled_from([t for t, _ in samples(fmt)]))
    check(ADAPTERS[fmt], topic, _dump(data.draw(json_values(field_names(fmt)))))


@pytest.mark.parametrize("fmt", FORMATS)
@fuzz_settings(400)
@given(data=st.data())
def test_mutated_real_payloads(fmt: str, data: st.DataObject) -> None:
    topic, payload = data.draw(st.sampled_from(samples(fmt)))
    try:
        tree = json.loads(payload)
    except ValueError:
        tree = None
    if tree is not None and data.draw(st.booleans()):
        for _ in range(data.draw(st.integers(1, 3))):
            tree = data.draw(mutated(tree, field_names(fmt)))
        payload = _dump(tree)
    else:  # byte-level: overwrite a slice with random bytes
        start = data.draw(st.integers(0, len(payload)))
        end = data.draw(st.integers(start, min(len(payload), start + 8)))
        payload = payload[:start] + data.draw(st.binary(max_size=8)) + payload[end:]
    check(ADAPTERS[fmt], topic, payload)


@pytest.mark.parametrize("fmt", FORMATS)
@fuzz_settings(500)
@given(data=st.data())
def test_real_payloads_on_mutated_topics(fmt: str, data: st.DataObject) -> None:
    topic, payload = data.draw(st.sampled_from(samples(fmt)))
    levels = topic.split("/")
    index = data.draw(st.integers(0, len(levels) - 1))
    levels[index] = data.draw(st.text(alphabet="ab/+#:_-0 é", max_size=6))
    if data.draw(st.booleans()):
        levels.insert(data.draw(st.integers(0, len(levels))), data.draw(st.text(max_size=4)))
    check(ADAPTERS[fmt], "/".join(levels), payload)
