"""Ground truth of a run on disk: buildings, meters, anomalies, grid_events (CSV) and run.json.

Plain CSV and JSON so that any tool (pandas, psql COPY, a spreadsheet) can read them back.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from simulators.anomalies import AnomalyLabels
from simulators.city import City, MeterSeries

FILES: Final = ("buildings.csv", "meters.csv", "anomalies.csv", "grid_events.csv", "run.json")
_LABEL_COLUMNS: Final = (
    "meter",
    "meter_id",
    "start",
    "end",
    "kind",
    "magnitude",
    "start_step",
    "stop_step",
)


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground truth read back from a run folder.

    Attributes
    ----------
    buildings : column name → array (n,); stock parameters then truth (``BuildingTruth``).
    meters : column name → array (M,) of the hourly meter table.
    anomalies, grid_events : labels; ``meter`` is the row in the hourly / grid series.
    anomaly_meter_id, grid_event_meter_id : meter_id of each label row.
    run : settings of the run (seed, sizes, start …).
    """

    buildings: dict[str, np.ndarray]
    meters: dict[str, np.ndarray]
    anomalies: AnomalyLabels
    anomaly_meter_id: npt.NDArray[np.str_]
    grid_events: AnomalyLabels
    grid_event_meter_id: npt.NDArray[np.str_]
    run: dict[str, object]


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else repr(float(value))
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def _write_columns(path: Path, columns: dict[str, np.ndarray]) -> None:
    names = list(columns)
    rows = zip(*(columns[c].tolist() for c in names), strict=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        writer.writerows([_cell(v) for v in row] for row in rows)


def _read_columns(path: Path) -> dict[str, list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        data = list(reader)
    return {name: [row[i] for row in data] for i, name in enumerate(header)}


def _parse(name: str, cells: list[str], kind: str) -> np.ndarray:
    """Typed column from text; ``kind`` is a numpy kind letter of the written column."""
    if kind == "b":
        return np.asarray([c == "true" for c in cells], dtype=bool)
    if kind in "iu":
        return np.asarray(cells, dtype=np.int64)
    if kind == "f":
        return np.asarray([float(c) if c else np.nan for c in cells], dtype=np.float64)
    if kind == "M":
        return np.asarray(cells, dtype="datetime64[s]")
    return np.asarray(cells, dtype=str)


def _label_columns(labels: AnomalyLabels, series: MeterSeries) -> dict[str, np.ndarray]:
    return {
        "meter": labels.meter,
        "meter_id": series.meter_id[labels.meter] if len(labels) else np.asarray([], dtype=str),
        "start": labels.start.astype(str),
        "end": labels.end.astype(str),
        "kind": labels.kind,
        "magnitude": labels.magnitude,
        "start_step": labels.start_step,
        "stop_step": labels.stop_step,
    }


def building_columns(city: City) -> dict[str, np.ndarray]:
    """Per-building table: index, stock parameters, feeder, then ground truth."""
    cols: dict[str, np.ndarray] = {"building": np.arange(len(city.stock))}
    cols.update(city.stock.as_columns())
    cols["feeder"] = city.feeder
    for f in fields(city.truth):
        name = f.name if f.name not in cols else f"truth_{f.name}"
        cols[name] = getattr(city.truth, f.name)
    return cols


def write_truth(city: City, folder: str | Path) -> list[Path]:
    """Write the ground truth of ``city`` into ``folder`` (created); returns the files."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    buildings = building_columns(city)
    _write_columns(out / "buildings.csv", buildings)
    m = city.meters
    meter_cols = {
        "meter": np.arange(len(m)),
        "meter_id": m.meter_id,
        "building": m.building,
        "feeder": m.feeder,
        "quantity": m.quantity,
        "unit": m.unit,
        "cumulative": m.cumulative,
    }
    _write_columns(out / "meters.csv", meter_cols)
    _write_columns(out / "anomalies.csv", _label_columns(city.anomalies, city.meters))
    _write_columns(out / "grid_events.csv", _label_columns(city.grid_events, city.grid))
    run = {
        "settings": city.settings,
        "hours": int(city.weather.ts.size),
        "first_hour_utc": str(city.weather.ts[0]),
        "meters": len(city.meters),
        "grid_meters": len(city.grid),
        "anomalies": len(city.anomalies),
        "grid_events": len(city.grid_events),
        "dtypes": {
            "buildings": {k: v.dtype.kind for k, v in buildings.items()},
            "meters": {k: v.dtype.kind for k, v in meter_cols.items()},
        },
    }
    (out / "run.json").write_text(json.dumps(run, sort_keys=True, indent=2) + "\n", "utf-8")
    return [out / name for name in FILES]


def _read_labels(path: Path) -> tuple[AnomalyLabels, npt.NDArray[np.str_]]:
    c = _read_columns(path)
    labels = AnomalyLabels(
        meter=_parse("meter", c["meter"], "i"),
        start=_parse("start", c["start"], "M"),
        end=_parse("end", c["end"], "M"),
        kind=np.asarray(c["kind"], dtype="<U20"),
        magnitude=_parse("magnitude", c["magnitude"], "f"),
        start_step=_parse("start_step", c["start_step"], "i"),
        stop_step=_parse("stop_step", c["stop_step"], "i"),
    )
    return labels, np.asarray(c["meter_id"], dtype=str)


def read_truth(folder: str | Path) -> Truth:
    """Read back what ``write_truth`` wrote; column types come from run.json."""
    src = Path(folder)
    missing = [name for name in FILES if not (src / name).is_file()]
    if missing:
        raise FileNotFoundError(f"folder: {src} lacks {', '.join(missing)}")
    run = json.loads((src / "run.json").read_text("utf-8"))
    kinds = run["dtypes"]
    raw_b = _read_columns(src / "buildings.csv")
    raw_m = _read_columns(src / "meters.csv")
    anomalies, anomaly_ids = _read_labels(src / "anomalies.csv")
    grid_events, grid_ids = _read_labels(src / "grid_events.csv")
    return Truth(
        buildings={k: _parse(k, v, kinds["buildings"][k]) for k, v in raw_b.items()},
        meters={k: _parse(k, v, kinds["meters"][k]) for k, v in raw_m.items()},
        anomalies=anomalies,
        anomaly_meter_id=anomaly_ids,
        grid_events=grid_events,
        grid_event_meter_id=grid_ids,
        run=run,
    )
