"""A rendered preview of each dashboard: matplotlib from the same queries Grafana would run.

Not a Grafana screenshot (no Grafana runs here): one small chart per panel, in panel order,
so a reviewer sees that every panel returns sensible data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import matplotlib as mpl

mpl.use("Agg")  # before pyplot: no display on servers
import matplotlib.pyplot as plt
import psycopg
from matplotlib.axes import Axes

from dashboards.build import DASHBOARDS, to_json
from dashboards.common import LABEL_COLORS, LABELS
from dashboards.runner import PanelRun, run_dashboard

UNIT_TEXT: Final = {
    "kwatth": "kWh", "watt": "W", "voltamp": "VA", "celsius": "°C", "volt": "V",
    "hertz": "Hz", "percentunit": "%", "short": "", "cps": "/s", "wps": "writes/s",
    "ms": "ms", "s": "s", "string": "", "none": "",
}  # fmt: skip
COLUMNS: Final = 3


def _numeric(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _timeseries(ax: Axes, runs: Sequence[PanelRun]) -> None:
    for k, run in enumerate(runs):
        target = ax if k == 0 else ax.twinx()
        names = [c for c, _ in run.result.columns]
        series: dict[str, tuple[list[Any], list[float]]] = defaultdict(lambda: ([], []))
        for row in run.result.rows:
            record = dict(zip(names, row, strict=True))
            for name, value in record.items():
                if name in ("time", "metric") or not _numeric(value):
                    continue
                key = str(record["metric"]) if "metric" in record else name
                series[key][0].append(record["time"])
                series[key][1].append(float(value))
        for key, (xs, ys) in list(series.items())[:8]:
            target.plot(xs, ys, linewidth=1, label=key[:28], linestyle="-" if k == 0 else "--",
                        marker="o" if len(xs) < 40 else None, markersize=3)  # fmt: skip
        if series:
            target.legend(fontsize=6, loc="upper left" if k == 0 else "upper right")
    ax.tick_params(axis="x", labelsize=6, rotation=30)


def _stat(ax: Axes, run: PanelRun, unit: str) -> None:
    row = run.result.rows[-1] if run.result.rows else ()
    value = next((v for v in row if _numeric(v)), None)
    if value is None:
        text = "—"
    elif unit == "percentunit":
        text = f"{float(value) * 100:.1f} %"
    else:
        text = f"{float(value):,.4g} {UNIT_TEXT.get(unit, unit)}"
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=20)
    ax.set_axis_off()


def _table(ax: Axes, run: PanelRun) -> None:
    names = [c for c, _ in run.result.columns][:6]
    cells = [
        [f"{v:.3g}" if isinstance(v, float) else str(v)[:22] for v in row[:6]]
        for row in run.result.rows[:10]
    ]
    ax.set_axis_off()
    if cells:
        table = ax.table(cellText=cells, colLabels=names, loc="upper center", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(6)


def _bars(ax: Axes, run: PanelRun) -> None:
    names = [c for c, _ in run.result.columns]
    rows = run.result.rows[:15]
    labels = [str(r[0])[:16] for r in rows]
    bottom = [0.0] * len(rows)
    for j, name in enumerate(names[1:], start=1):
        values = [float(r[j]) if _numeric(r[j]) else 0.0 for r in rows]
        ax.bar(labels, values, bottom=bottom, label=name, color=LABEL_COLORS.get(name))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.legend(fontsize=6)
    ax.tick_params(axis="x", labelsize=6, rotation=60)


def _pie(ax: Axes, run: PanelRun) -> None:
    rows = run.result.rows
    ax.pie([float(r[1]) for r in rows], labels=[str(r[0]) for r in rows], autopct="%d",
           textprops={"fontsize": 7})  # fmt: skip


def _xy(ax: Axes, runs: Sequence[PanelRun]) -> None:
    for k, run in enumerate(runs):
        xs = [float(r[0]) for r in run.result.rows if _numeric(r[0]) and _numeric(r[1])]
        ys = [float(r[1]) for r in run.result.rows if _numeric(r[0]) and _numeric(r[1])]
        label = run.result.columns[1][0]
        if k == 0:
            ax.scatter(xs, ys, s=8, label=label)
        else:
            ax.plot(xs, ys, color="red", label=label)
    ax.set_xlabel(runs[0].result.columns[0][0] if runs else "", fontsize=7)
    ax.legend(fontsize=6)


def _map(ax: Axes, run: PanelRun) -> None:
    names = [c for c, _ in run.result.columns]
    rows = [dict(zip(names, r, strict=True)) for r in run.result.rows]
    for label in LABELS:
        pts = [r for r in rows if r.get("label") == label]
        if pts:
            ax.scatter([p["lon"] for p in pts], [p["lat"] for p in pts], s=14,
                       color=LABEL_COLORS[label], label=label)  # fmt: skip
    ax.legend(fontsize=6, ncol=4)
    ax.set_xlabel("lon [°]", fontsize=7)
    ax.set_ylabel("lat [°]", fontsize=7)


def _draw(ax: Axes, panel: Mapping[str, Any], runs: Sequence[PanelRun]) -> None:
    unit = str(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""))
    kind = str(panel["type"])
    shown = UNIT_TEXT.get(unit, unit)
    title = str(panel["title"]).replace("$bucket", "day")  # the variable's default
    ax.set_title(title + (f" [{shown}]" if shown else ""), fontsize=8)
    if not runs or not any(r.result.rows for r in runs):
        ax.text(0.5, 0.5, "no data", ha="center", va="center")
        ax.set_axis_off()
    elif kind == "timeseries":
        _timeseries(ax, runs)
    elif kind == "stat":
        _stat(ax, runs[0], unit)
    elif kind == "barchart":
        _bars(ax, runs[0])
    elif kind == "piechart":
        _pie(ax, runs[0])
    elif kind == "xychart":
        _xy(ax, runs)
    elif kind == "geomap":
        _map(ax, runs[0])
    else:
        _table(ax, runs[0])
    ax.tick_params(labelsize=6)


def render_previews(
    conn: psycopg.Connection,
    folder: Path,
    *,
    time_from: datetime,
    time_to: datetime,
    choose: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[Path]:
    """Write ``<folder>/<dashboard>.png`` for every dashboard; yields each path."""
    folder.mkdir(parents=True, exist_ok=True)
    for spec in DASHBOARDS:
        data = to_json(spec)
        by_panel: dict[str, list[PanelRun]] = defaultdict(list)
        for run in run_dashboard(conn, data, time_from=time_from, time_to=time_to, choose=choose):
            by_panel[run.query.panel].append(run)
        panels = data["panels"]
        rows = -(-len(panels) // COLUMNS)
        fig, axes = plt.subplots(rows, COLUMNS, figsize=(15, 3.3 * rows), squeeze=False)
        for ax, panel in zip(axes.flat, panels, strict=False):
            _draw(ax, panel, by_panel.get(str(panel["title"]), []))
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_axis_off()
        fig.suptitle(
            f"{data['title']} — {time_from:%Y-%m-%d %H:%M} to {time_to:%Y-%m-%d %H:%M} UTC "
            "(preview from the panels' SQL; Grafana renders the real thing)",
            fontsize=10,
        )
        fig.tight_layout(rect=(0, 0, 1, 0.97))
        path = folder / f"{spec.slug}.png"
        fig.savefig(path, dpi=80, metadata={"Software": None})
        plt.close(fig)
        yield path
