"""Register a simulated city (municipalities, buildings, meters) so the ingestor resolves it.

ESPHome and SenML temperature/gas payloads carry no unit or quantity: those meters only work
registered. Registration is idempotent: buildings are found again by name, meters by key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import psycopg

from simulators.city import City
from simulators.devices import DevicePlan, topic_of
from storage import sim_truth
from storage.meters import create_building, create_municipality, register_meter

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Registration:
    """Database ids of a registered city.

    Attributes
    ----------
    building_id : (n,) buildings.id of each simulated building.
    meter_id : (C,) meters.id of each ``DevicePlan.channels`` entry.
    """

    building_id: IntArray
    meter_id: IntArray


def building_name(prefix: str, index: int) -> str:
    return f"{prefix}-b{index:06d}"


def register_city(
    conn: psycopg.Connection, city: City, plan: DevicePlan, *, installed_at: datetime | None = None
) -> Registration:
    """Create what is missing and return the ids; the caller commits."""
    stock = city.stock
    towns = {
        int(m): create_municipality(conn, f"{plan.prefix} commune {int(m):03d}")
        for m in np.unique(stock.municipality)
    }
    names = [building_name(plan.prefix, i) for i in range(len(stock))]
    known = sim_truth.building_ids_by_name(conn, names)
    building_id = np.empty(len(stock), dtype=np.int64)
    for i, name in enumerate(names):
        if name in known:
            building_id[i] = known[name]
            continue
        use = str(stock.use[i])
        building_id[i] = create_building(
            conn,
            name=name,
            municipality_id=towns[int(stock.municipality[i])],
            floor_area_m2=float(stock.floor_area_m2[i]),
            year_built=int(stock.year_built[i]),
            use=use,
            heating_carrier=str(stock.carrier[i]),
            heating_efficiency=float(stock.efficiency[i]),
            lat=float(stock.lat_deg[i]),
            lon=float(stock.lon_deg[i]),
            is_household=use == "household",
            occupants=int(stock.occupants[i]) if use == "household" else None,
        )
    meter_id = np.empty(len(plan.channels), dtype=np.int64)
    for c, ch in enumerate(plan.channels):
        device = plan.devices[ch.device]
        meter = register_meter(
            conn,
            device_format=device.format,
            device_id=device.device_id,
            channel=ch.channel,
            quantity=ch.quantity,
            unit=ch.unit,
            cumulative=ch.cumulative,
            building_id=int(building_id[device.building]) if device.building >= 0 else None,
            name=f"{device.device_id} {ch.channel}",
            installed_at=installed_at,
        )
        meter_id[c] = meter.id
    return Registration(building_id=building_id, meter_id=meter_id)


def registration_lines(city: City, plan: DevicePlan) -> Iterator[str]:
    """What ``register_city`` would register, as tab-separated lines with a header."""
    stock = city.stock
    yield "\t".join(("kind", "name", "municipality", "floor_area_m2", "year_built", "use",
                     "heating_carrier", "heating_efficiency", "lat", "lon",
                     "occupants"))  # fmt: skip
    for i in range(len(stock)):
        yield "\t".join(
            (
                "building",
                building_name(plan.prefix, i),
                f"{plan.prefix} commune {int(stock.municipality[i]):03d}",
                f"{stock.floor_area_m2[i]:.1f}",
                str(int(stock.year_built[i])),
                str(stock.use[i]),
                str(stock.carrier[i]),
                f"{stock.efficiency[i]:.3f}",
                f"{stock.lat_deg[i]:.5f}",
                f"{stock.lon_deg[i]:.5f}",
                str(int(stock.occupants[i])) if stock.use[i] == "household" else "",
            )
        )
    yield "\t".join(("kind", "device_format", "device_id", "channel", "quantity", "unit",
                     "cumulative", "building", "topic"))  # fmt: skip
    for ch in plan.channels:
        device = plan.devices[ch.device]
        yield "\t".join(
            (
                "meter",
                device.format,
                device.device_id,
                ch.channel,
                ch.quantity,
                ch.unit,
                "true" if ch.cumulative else "false",
                building_name(plan.prefix, device.building) if device.building >= 0 else "",
                topic_of(device),
            )
        )


def write_truth_rows(
    conn: psycopg.Connection, city: City, plan: DevicePlan, registration: Registration
) -> int:
    """Record the run and its ground truth in ``sim_*`` tables; returns the run id."""
    seed = city.settings["seed"]
    assert isinstance(seed, int)
    run_id = sim_truth.create_run(
        conn, seed=seed, device_prefix=plan.prefix, settings=city.settings
    )
    truth = city.truth
    sim_truth.write_buildings(
        conn,
        run_id,
        registration.building_id,
        {name: getattr(truth, name) for name in sim_truth.TRUTH_COLUMNS},
    )
    for source, labels, series in (
        ("meter", city.anomalies, "meters"),
        ("grid", city.grid_events, "grid"),
    ):
        if not len(labels):
            continue
        primary = plan.primary_channel(series)
        channel = np.asarray([primary[int(r)] for r in labels.meter], dtype=np.int64)
        sim_truth.write_anomalies(
            conn,
            run_id,
            meter_id=registration.meter_id[channel],
            source=source,
            start=labels.start,
            end=labels.end,
            kind=labels.kind,
            magnitude=labels.magnitude,
        )
    return run_id
