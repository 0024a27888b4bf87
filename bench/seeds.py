"""Year-scan anomaly scores over many simulated cities: the check that thresholds chosen on a
few seeds hold on others.

Run: ``.venv/bin/python -m bench.seeds`` (``--first``, ``--count``, ``--sets``, ``--jobs``,
``--buildings``). For each seed, the city of ``bench.accuracy`` (same size, start and length)
is simulated and scanned as that bench's year scan does, then scored the same way
(``score_city``). Prints a row per seed, the mean, and how many seeds meet each target; with
``--sets K``, K consecutive sets of ``--count`` seeds, each with its own mean (a change is
checked on every set: one set of 16 cities moves these means by 0.01–0.02). About 2 s a
seed, ``--jobs`` seeds at once; no service replay, no insulation, no clean twin
(``bench.accuracy`` has them, for one seed). ``--early`` adds "found within 2 days" (the
whole city cut 48 h after each level shift began and scanned on the service's context, as
``bench.accuracy`` does): about 30 s a seed more. ``--insulation`` adds the heat-loss and
label scores of every city (``bench.accuracy``'s ``score_insulation``; about 0.1 s a seed).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Final

if __package__ in (None, ""):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.accuracy import (
    START,
    TARGETS,
    Station,
    building_daily,
    consumption_matrix,
    detector_kinds,
    level_shifts_found_early,
    run_core,
    score_city,
    score_insulation,
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
EARLY: Final = ("recall_level_shift_within_2d", "2 days")  # with --early
# With --insulation: keys of TARGETS (one ending in "_max" is met at or below it).
INSULATION: Final = (
    ("hlc_median_rel_err_max", "HLC p50"),
    ("hlc_p90_rel_err_max", "HLC p90"),
    ("hlc_arx_median_rel_err_max", "ARX p50"),
    ("balance_temp_median_abs_err_k_max", "Tb K"),
    ("label_exact", "exact"),
    ("label_within_one", "within1"),
    ("fg_recall", "FG rec"),
    ("fg_precision", "FG prec"),
)


def score_seed(
    seed: int, *, buildings: int, days: int, early: bool = False, insulation: bool = False
) -> dict[str, float]:
    """The year scan's scores of one simulated city: recall per target and precision; with
    ``early``, also the level shifts found within 2 days; with ``insulation``, the
    heat-loss errors and label scores (keys of ``INSULATION``)."""
    city = simulate_city(buildings=buildings, start=START, days=days, seed=seed)
    x, resets = consumption_matrix(city)
    kinds, station = detector_kinds(city), Station.of(city, x)
    det = run_core(x, resets, kinds, station)
    # Alarms: the level-shift warnings of the year's last two days are shown apart.
    scores = score_city(city, det.alarms(), spike_sigma(city, x))
    # NaN where a small city has no label of a kind (score_city's None).
    out = {key: _or_nan(scores[key]["recall"]) for key, _ in COLUMNS if key != "precision"}
    out["precision"] = _or_nan(scores["precision"])
    if early:
        out[EARLY[0]] = _or_nan(level_shifts_found_early(city, x, kinds, station)[0]["recall"])
    if insulation:
        bd, heat_row = building_daily(city, x)
        ins = score_insulation(city, bd, x, heat_row)
        labels = ins["labels"]
        scores = {
            "hlc_median_rel_err_max": ins["hlc_median_rel_err"],
            "hlc_p90_rel_err_max": ins["hlc_p90_rel_err"],
            "hlc_arx_median_rel_err_max": ins["hlc_arx_median_rel_err"],
            "balance_temp_median_abs_err_k_max": ins["balance_temp_median_abs_err_k"],
            "label_exact": labels["exact"],
            "label_within_one": labels["within_one"],
            "fg_recall": labels["fg_recall"],
            "fg_precision": labels["fg_precision"],
        }
        out.update({key: _or_nan(value) for key, value in scores.items()})
    return out


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _scores(
    seeds: Sequence[int], *, buildings: int, days: int, jobs: int, early: bool, insulation: bool
) -> Iterator[dict[str, float]]:
    """:func:`score_seed` of each seed, in order; ``jobs`` > 1 scores that many at once, in
    processes (the scan holds the GIL between its NumPy calls)."""
    score = partial(score_seed, buildings=buildings, days=days, early=early, insulation=insulation)
    if jobs == 1:
        yield from map(score, seeds)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(score, seeds)


def _meets(key: str, value: float) -> bool:
    """Whether a score meets its target (``TARGETS[key]``; at most it for a "_max" key)."""
    return value <= TARGETS[key] if key.endswith("_max") else value >= TARGETS[key]


def _summary(
    rows: Sequence[dict[str, float]], columns: Sequence[tuple[str, str]] = COLUMNS
) -> list[str]:
    """The mean, the seeds meeting each target, and the targets: three lines; over the
    seeds with a value (see :func:`score_seed`)."""
    scored = {key: [r[key] for r in rows if not math.isnan(r[key])] for key, _ in columns}
    mean = {key: sum(v) / len(v) if v else math.nan for key, v in scored.items()}
    met = {key: f"{sum(map(partial(_meets, key), v))}/{len(v)}" for key, v in scored.items()}
    return [
        "mean  " + "  ".join(f"{mean[key]:>7.3f}" for key, _ in columns),
        "met   " + "  ".join(f"{met[key]:>7}" for key, _ in columns),
        "target" + "  ".join(f"{TARGETS[key]:>7.2f}" for key, _ in columns),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, default=300, help="first seed")
    parser.add_argument("--count", type=int, default=8, help="seeds a set, from --first on")
    parser.add_argument("--sets", type=int, default=1, help="consecutive sets of --count seeds")
    parser.add_argument("--jobs", type=int, default=1, help="seeds scored at once (processes)")
    parser.add_argument("--buildings", type=int, default=300)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--early", action="store_true", help="also level shifts found within 2 days (slower)"
    )
    parser.add_argument(
        "--insulation", action="store_true", help="also heat-loss errors and label scores"
    )
    args = parser.parse_args(argv)
    for name in ("count", "sets", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be at least 1")
    columns = (
        *COLUMNS,
        *((EARLY,) if args.early else ()),
        *(INSULATION if args.insulation else ()),
    )
    header = "seed  " + "  ".join(f"{name:>7}" for _, name in columns)
    print(header)
    seeds = range(args.first, args.first + args.count * args.sets)
    rows: list[dict[str, float]] = []
    t0 = time.perf_counter()
    scores = _scores(
        seeds,
        buildings=args.buildings,
        days=args.days,
        jobs=args.jobs,
        early=args.early,
        insulation=args.insulation,
    )
    for seed, row in zip(seeds, scores, strict=True):
        rows.append(row)
        print(f"{seed:<4}  " + "  ".join(f"{row[key]:>7.3f}" for key, _ in columns), flush=True)
        if args.sets > 1 and len(rows) % args.count == 0:
            print(f"seeds {seed - args.count + 1}–{seed}:")
            print("\n".join(_summary(rows[-args.count :], columns)) + "\n", flush=True)
    if args.sets > 1:
        print(f"all {len(rows)} seeds:")
    print("\n".join(_summary(rows, columns)))
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
