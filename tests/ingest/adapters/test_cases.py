"""Data-folder cases for every adapter: a new device quirk is a new folder, not new code.

Each ``cases/<format>/<case>/`` holds ``topic.txt``, one payload file (``payload.json``,
``payload.txt`` or ``payload.bin``, used byte for byte) and ``expected.json``: the readings
(ISO timestamps) or ``{"error": "<substring of the PayloadError reason>"}``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.adapters.registry import ADAPTERS
from ingest.reading import Reading
from wattwatch.errors import PayloadError

CASES = Path(__file__).parent / "cases"
RECEIVED_AT = datetime(2024, 1, 5, 11, 0, 30, tzinfo=UTC)


def _case_dirs() -> list[Path]:
    return sorted(p for p in CASES.glob("*/*") if p.is_dir())


def _payload(case: Path) -> bytes:
    (path,) = [p for p in case.iterdir() if p.name.startswith("payload.")]
    return path.read_bytes()


def _as_dict(reading: Reading) -> dict[str, Any]:
    return {
        "device_id": reading.device_id,
        "channel": reading.channel,
        "ts": reading.ts,
        "value": reading.value,
        "quantity": reading.quantity,
        "unit": reading.unit,
        "cumulative": reading.cumulative,
    }


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return (str(row["channel"]), str(row["ts"]))


def test_every_format_has_enough_cases() -> None:
    for fmt in ADAPTERS:
        names = [p.name for p in (CASES / fmt).iterdir()]
        assert sum(not n.startswith("bad_") for n in names) >= 3, fmt
        assert sum(n.startswith("bad_") for n in names) >= 3, fmt


@pytest.mark.parametrize("case", _case_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_case(case: Path) -> None:
    parse = ADAPTERS[case.parent.name]
    topic = (case / "topic.txt").read_text().strip()
    expected = json.loads((case / "expected.json").read_text())

    if isinstance(expected, dict):
        with pytest.raises(PayloadError) as info:
            parse(topic, _payload(case), RECEIVED_AT)
        assert expected["error"] in str(info.value)
        return

    got = sorted((_as_dict(r) for r in parse(topic, _payload(case), RECEIVED_AT)), key=_key)
    want = sorted(({**row, "ts": datetime.fromisoformat(row["ts"])} for row in expected), key=_key)
    assert len(got) == len(want), [_key(r) for r in got]
    for g, w in zip(got, want, strict=True):
        assert math.isclose(g.pop("value"), w.pop("value"), rel_tol=1e-9, abs_tol=1e-9), g
        assert abs((g.pop("ts") - w.pop("ts")).total_seconds()) < 1e-3, g
        assert g == w
