"""Generation speed of ``simulate_city`` for 100, 1,000 and 10,000 buildings × 365 days, hourly.

Baseline in the same run: the 2R2C thermal model stepped by a per-building Python loop on a
subset of buildings, extrapolated linearly to each size, against the vectorised thermal stage.

Usage (from the repository root; `-m` keeps bench/ off sys.path, where bench/processing.py
would shadow the processing package): python -m bench.simulate [--sizes 100 1000 10000]
Writes bench/results/simulate.json.

``--io`` (``--io-only`` skips the generation sweep) also measures, against a PostgreSQL+
TimescaleDB and a Mosquitto started by the bench itself on free ports: the direct backfill
(numpy binary COPY, ``storage.bulk``) in rows/s against the row-by-row baseline
(``storage.readings.write_readings``, ``write_row`` per tuple, tuples built from the same
arrays) on the same rows, and the live publish rate (QoS 1, PUBACK-bounded window, no
subscriber) in messages/s and readings/s. Writes bench/results/simulate_io.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from datetime import UTC
from pathlib import Path

import numpy as np
import psycopg

from simulators.backfill import backfill, expected_rows
from simulators.city import simulate_city
from simulators.devices import plan_devices
from simulators.publish import MqttPublisher, publish_city
from simulators.register import register_city
from simulators.stock import draw_stock, setpoint_schedule
from simulators.thermal import discretise, simulate_thermal
from simulators.weather import paris_local_time, simulate_weather
from storage.readings import write_readings
from tests.fixtures.servers import fresh_database, running_mosquitto, running_postgres

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"
IO_RESULTS = RESULTS.with_name("simulate_io.json")


def naive_thermal_seconds_per_building(subset: int, days: int, seed: int) -> float:
    """Seconds per building of a per-building, per-hour Python loop of the same 2R2C model."""
    rng = np.random.default_rng(seed)
    weather = simulate_weather(start="2024-01-01", days=days, rng=rng)
    stock = draw_stock(subset, rng=rng)
    hour, weekday = paris_local_time(weather.ts)
    setpoint = np.ascontiguousarray(setpoint_schedule(stock, hour, weekday), dtype=np.float64)
    gains = stock.solar_aperture_m2[:, None] * weather.ghi_w_m2[None, :]
    d = discretise(stock.rc)
    te = weather.temp_c.tolist()
    start = time.perf_counter()
    heat = np.empty((subset, te.__len__()))
    for b in range(subset):  # the baseline: one building at a time, one hour at a time
        ad, bd, pmax = d.ad[b].tolist(), d.bd[b].tolist(), float(stock.heating_max_w[b])
        ti = tm = float(setpoint[b, 0])
        sp, g = setpoint[b].tolist(), gains[b].tolist()
        row = heat[b]
        for k, te_k in enumerate(te):
            fi = ad[0][0] * ti + ad[0][1] * tm + bd[0][0] * te_k + bd[0][1] * g[k]
            fm = ad[1][0] * ti + ad[1][1] * tm + bd[1][0] * te_k + bd[1][1] * g[k]
            p = min(max((sp[k] - fi) / bd[0][1], 0.0), pmax)
            row[k] = p
            ti, tm = fi + bd[0][1] * p, fm + bd[1][1] * p
    elapsed = time.perf_counter() - start
    vec = simulate_thermal(
        stock.rc,
        outdoor_temp_c=weather.temp_c,
        gains_w=gains,
        setpoint_c=setpoint,
        heating_max_w=stock.heating_max_w,
    )
    np.testing.assert_allclose(vec.heating_w, heat, rtol=1e-4, atol=1e-2)  # same model
    return elapsed / subset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--naive-subset", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--io", action="store_true", help="also backfill and publish rates")
    parser.add_argument("--io-only", action="store_true", help="only backfill/publish rates")
    parser.add_argument("--io-sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--io-days", type=int, default=14)
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    args = parser.parse_args()
    if args.io or args.io_only:
        io_benchmark(args.io_sizes, args.io_days, args.seed, args.baseline_rows)
    if args.io_only:
        return

    per_building = naive_thermal_seconds_per_building(args.naive_subset, args.days, args.seed)
    rows = []
    for n in args.sizes:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        city = simulate_city(buildings=n, start="2024-01-01", days=args.days, seed=args.seed)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        thermal = city.timings_s["thermal"]
        naive = per_building * n
        rows.append(
            {
                "buildings": n,
                "days": args.days,
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu, 3),
                "building_hours_per_s": round(n * args.days * 24 / seconds),
                "meters": len(city.meters),
                "readings": int(city.meters.values.size + city.grid.values.size),
                "stage_seconds": {k: round(v, 3) for k, v in city.timings_s.items()},
                "thermal_seconds": round(thermal, 3),
                "naive_thermal_seconds_extrapolated": round(naive, 1),
                "thermal_speedup_vs_naive": round(naive / thermal, 1),
            }
        )
        del city

    print(
        f"{'buildings':>9} {'seconds':>8} {'cpu s':>7} {'bldg-h/s':>11} {'thermal s':>9} "
        f"{'naive thermal s':>15} {'speedup':>8}"
    )
    for r in rows:
        print(
            f"{r['buildings']:>9} {r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} "
            f"{r['building_hours_per_s']:>11,} {r['thermal_seconds']:>9.2f} "
            f"{r['naive_thermal_seconds_extrapolated']:>15.1f} "
            f"{r['thermal_speedup_vs_naive']:>7.1f}×"
        )
    result = {
        "benchmark": "simulate_city",
        "command": "python -m bench.simulate "
        + " ".join(
            [
                "--sizes",
                *map(str, args.sizes),
                "--days",
                str(args.days),
                "--naive-subset",
                str(args.naive_subset),
                "--seed",
                str(args.seed),
            ]
        ),
        "naive_subset_buildings": args.naive_subset,
        "naive_thermal_seconds_per_building": round(per_building, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


def io_benchmark(sizes: list[int], days: int, seed: int, baseline_rows: int) -> None:
    """Backfill rows/s (bulk vs row-by-row) and publish messages/s on servers of its own."""
    rows = []
    with running_postgres() as pg, running_mosquitto() as broker:
        for n in sizes:
            city = simulate_city(
                buildings=n, start="2024-12-02", days=days, seed=seed,
                grid_feeders=min(10, max(1, n // 50)),
            )  # fmt: skip
            plan = plan_devices(city, None, seed=seed)
            with psycopg.connect(fresh_database(pg)) as conn:
                reg = register_city(conn, city, plan)
                conn.commit()
                t0 = time.perf_counter()
                stats = backfill(conn, city, plan, reg.meter_id)
                bulk_s = time.perf_counter() - t0
            # Baseline: the same rows, as Python tuples through write_row, into a fresh database.
            with psycopg.connect(fresh_database(pg)) as conn:
                reg = register_city(conn, city, plan)
                conn.commit()
                done = 0
                t0 = time.perf_counter()
                for m, ts, v in expected_rows(city, plan, reg.meter_id):
                    take = min(m.size, baseline_rows - done)
                    tuples = [
                        (mi, t.replace(tzinfo=UTC), x)
                        for mi, t, x in zip(
                            m[:take].tolist(),
                            ts[:take].astype("datetime64[us]").tolist(),
                            v[:take].tolist(),
                            strict=True,
                        )
                    ]
                    write_readings(conn, tuples)
                    conn.commit()
                    done += take
                    if done >= baseline_rows:
                        break
                naive_s = time.perf_counter() - t0
            publisher = MqttPublisher(broker.url, client_id=f"bench-pub-{n}")
            pub = publish_city(city, plan, publisher, seed=seed)
            publisher.close()
            bulk_rate = stats.rows / bulk_s
            naive_rate = done / naive_s
            rows.append(
                {
                    "buildings": n,
                    "days": days,
                    "devices": len(plan.devices),
                    "channels": len(plan.channels),
                    "backfill_rows": stats.rows,
                    "backfill_seconds": round(bulk_s, 3),
                    "backfill_rows_per_s": round(bulk_rate),
                    "row_by_row_rows": done,
                    "row_by_row_seconds": round(naive_s, 3),
                    "row_by_row_rows_per_s": round(naive_rate),
                    "backfill_speedup": round(bulk_rate / naive_rate, 1),
                    "publish_messages": pub.sent,
                    "publish_readings": pub.readings,
                    "publish_seconds": round(pub.elapsed_s, 3),
                    "publish_messages_per_s": round(pub.sent / pub.elapsed_s),
                    "publish_readings_per_s": round(pub.readings / pub.elapsed_s),
                    "publish_acknowledged": pub.acknowledged,
                }
            )
            del city
    print(
        f"{'buildings':>9} {'rows':>10} {'COPY rows/s':>12} {'write_row rows/s':>16} "
        f"{'speedup':>8} {'msgs':>9} {'msgs/s':>8} {'readings/s':>10}"
    )
    for r in rows:
        print(
            f"{r['buildings']:>9} {r['backfill_rows']:>10,} {r['backfill_rows_per_s']:>12,} "
            f"{r['row_by_row_rows_per_s']:>16,} {r['backfill_speedup']:>7.1f}× "
            f"{r['publish_messages']:>9,} {r['publish_messages_per_s']:>8,} "
            f"{r['publish_readings_per_s']:>10,}"
        )
    result = {
        "benchmark": "simulate_io",
        "command": "python -m bench.simulate --io-only --io-sizes "
        + " ".join(map(str, sizes))
        + f" --io-days {days} --seed {seed} --baseline-rows {baseline_rows}",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rows": rows,
    }
    IO_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    IO_RESULTS.write_text(json.dumps(result, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {IO_RESULTS}")


if __name__ == "__main__":
    main()
