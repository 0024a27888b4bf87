"""Generation speed of ``simulate_city`` for 100, 1,000 and 10,000 buildings × 365 days, hourly.

Baseline in the same run: the 2R2C thermal model stepped by a per-building Python loop on a
subset of buildings, extrapolated linearly to each size, against the vectorised thermal stage.

Usage (from the repository root; `-m` keeps bench/ off sys.path, where bench/processing.py
would shadow the processing package): python -m bench.simulate [--sizes 100 1000 10000]
Writes bench/results/simulate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np

from simulators.city import simulate_city
from simulators.stock import draw_stock, setpoint_schedule
from simulators.thermal import discretise, simulate_thermal
from simulators.weather import paris_local_time, simulate_weather

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"


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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
