"""Year-scan anomaly scores over many simulated cities: the check that thresholds chosen on a
few seeds hold on others.

Run: ``.venv/bin/python -m bench.seeds`` (``--first``, ``--count``, ``--buildings``).
For each seed, the city of ``bench.accuracy`` (same size, start and length) is simulated and
scanned as that bench's year scan does, then scored the same way (``score_city``). Prints a
row per seed, the mean, and how many seeds meet each target. About 2 s a seed; no service
replay, no insulation, no clean twin (``bench.accuracy`` has them, for one seed).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

if __package__ in (None, ""):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.accuracy import (
    START,
    TARGETS,
    Station,
    consumption_matrix,
    detector_kinds,
    run_core,
    score_city,
    spike_sigma,
)
from simulators.city import simulate_city

# The columns: the key of score_city (and of TARGETS) and a short name.
COLUMNS: Final = (
    ("recall_spike_ge_5sigma", "spikes"),
    ("recall_outage", "outages"),
    ("recall_flatline_ge_6h", "flat"),
    ("recall_counter_reset", "resets"),
    ("recall_level_shift", "shifts"),
    ("recall_schedule", "sched"),
    ("precision", "prec"),
)


def score_seed(seed: int, *, buildings: int, days: int) -> dict[str, float]:
    """The year scan's scores of one simulated city: recall per target and precision."""
    city = simulate_city(buildings=buildings, start=START, days=days, seed=seed)
    x, resets = consumption_matrix(city)
    det = run_core(x, resets, detector_kinds(city), Station.of(city, x))
    # Alarms: the level-shift warnings of the year's last two days are shown apart.
    scores = score_city(city, det.alarms(), spike_sigma(city, x))
    out = {key: float(scores[key]["recall"]) for key, _ in COLUMNS if key != "precision"}
    out["precision"] = float(scores["precision"])
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, default=300, help="first seed")
    parser.add_argument("--count", type=int, default=8, help="seeds from --first on")
    parser.add_argument("--buildings", type=int, default=300)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count: must be at least 1")
    header = "seed  " + "  ".join(f"{name:>7}" for _, name in COLUMNS)
    print(header)
    rows: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for seed in range(args.first, args.first + args.count):
        row = score_seed(seed, buildings=args.buildings, days=args.days)
        rows.append(row)
        print(f"{seed:<4}  " + "  ".join(f"{row[key]:>7.3f}" for key, _ in COLUMNS), flush=True)
    mean = {key: sum(r[key] for r in rows) / len(rows) for key, _ in COLUMNS}
    print("mean  " + "  ".join(f"{mean[key]:>7.3f}" for key, _ in COLUMNS))
    met = {key: sum(r[key] >= TARGETS[key] for r in rows) for key, _ in COLUMNS}
    print("met   " + "  ".join(f"{f'{met[key]}/{len(rows)}':>7}" for key, _ in COLUMNS))
    print("target" + "  ".join(f"{TARGETS[key]:>7.2f}" for key, _ in COLUMNS))
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
