"""The household page: one small server-rendered HTML page with plain SVG charts.

No JavaScript and no front-end build: it works with a screen reader and without scripts. The
household signs in once with its token, kept in an HttpOnly, SameSite=Strict cookie (so other
sites cannot post the consent form on its behalf).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import COOKIE, AppState, Conn, OptionalCaller, State
from api.models import Consents
from api.routes.households import change_consents, device_statuses, visible_household
from storage import api_reads
from storage.tokens import Caller, caller_of

router = APIRouter(prefix="/household", include_in_schema=False)
PARIS = ZoneInfo("Europe/Paris")

_CSS = """
body{font-family:system-ui,sans-serif;max-width:52rem;margin:1rem auto;padding:0 1rem;
color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
.bar{fill:#1f5fa8}.axis{stroke:#555}.lbl{font-size:11px;fill:#333}
.ok{color:#0a6b2d;font-weight:bold}.down{color:#a30000;font-weight:bold}
.label{display:inline-block;font-size:2rem;font-weight:bold;padding:.1rem .8rem;
border:3px solid #1b1b1b;border-radius:.3rem}
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.15rem .5rem;
text-align:right}
code{background:#f3f3f3;padding:0 .2rem;word-break:break-all}
button{font-size:1rem;padding:.3rem .9rem}
"""


def _doc(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def bar_chart(title: str, points: list[tuple[str, float]], unit: str) -> str:
    """An accessible SVG bar chart (role=img with a text summary) plus its data as a table."""
    if not points:
        return f"<p>No {escape(title.lower())} yet.</p>"
    width, height, pad = 640, 200, 30
    top = max(v for _, v in points) or 1.0
    step = (width - pad) / len(points)
    bars = []
    for i, (label, value) in enumerate(points):
        h = (height - 2 * pad) * value / top
        x = pad + i * step
        bars.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{height - pad - h:.1f}" '
            f'width="{max(step - 2, 1):.1f}" height="{h:.1f}">'
            f"<title>{escape(label)}: {value:.1f} {unit}</title></rect>"
        )
    first, last = points[0][0], points[-1][0]
    total = sum(v for _, v in points)
    count = f"{len(points)} bar" + ("" if len(points) == 1 else "s")
    summary = f"{title}: {count} from {first} to {last}, total {total:.1f} {unit}"
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v:.1f}</td></tr>" for k, v in points)
    return (
        f'<figure><svg role="img" aria-label="{escape(summary)}" viewBox="0 0 {width} {height}"'
        f' width="100%">'
        f'<line class="axis" x1="{pad}" y1="{height - pad}" x2="{width}" y2="{height - pad}"/>'
        f'<text class="lbl" x="{pad}" y="{height - 8}">{escape(first)}</text>'
        f'<text class="lbl" x="{width}" y="{height - 8}" text-anchor="end">{escape(last)}</text>'
        f'<text class="lbl" x="2" y="{pad - 8}">{top:.0f} {unit}</text>'
        + "".join(bars)
        + f"</svg><figcaption>{escape(summary)}</figcaption></figure>"
        f"<details><summary>{escape(title)} as a table</summary><table><tr><th>period</th>"
        f"<th>{unit}</th></tr>{rows}</table></details>"
    )


async def _consumption(
    conn: Conn, household_id: int, resolution: str, span: timedelta, fmt: str
) -> list[tuple[str, float]]:
    """Summed consumption of the household's energy indexes per Paris period."""
    meters = await api_reads.meters(conn, household_id=household_id, limit=100)
    end = datetime.now(UTC)
    sums: dict[datetime, float] = defaultdict(float)
    for m in meters:
        if not (m.cumulative and m.unit == "kWh"):
            continue
        rows = await api_reads.series(
            conn,
            m.id,
            resolution=resolution,  # type: ignore[arg-type]
            start=end - span,
            end=end + timedelta(days=1),
            limit=400,
        )
        for r in rows:
            if r.consumption is not None:
                sums[r.ts] += r.consumption
    return [(ts.astimezone(PARIS).strftime(fmt), v) for ts, v in sorted(sums.items())]


def _login(message: str = "") -> str:
    note = f'<p role="alert">{escape(message)}</p>' if message else ""
    return _doc(
        "wattwatch — my home",
        "<h1>My home's energy</h1>" + note + '<form method="post" action="/household/login">'
        '<label for="token">Your household token (given at enrolment)</label><br>'
        '<input id="token" name="token" type="password" size="50" autocomplete="off" required>'
        ' <button type="submit">Sign in</button></form>',
    )


async def _render(conn: Conn, state: AppState, caller: Caller) -> str:
    assert caller.household_id is not None
    hh = await visible_household(conn, caller, caller.household_id)
    k = state.settings.api_min_group_households
    parts = [f"<h1>{escape(hh.display_name)}: my home's energy</h1>"]

    parts.append('<section aria-labelledby="use"><h2 id="use">Consumption</h2>')
    if hh.consent_daily or hh.consent_load_curve:
        for title, res, span, fmt in (
            ("Electricity per day", "day", timedelta(days=30), "%d/%m"),
            ("Electricity per week", "week", timedelta(weeks=12), "week of %d/%m"),
            ("Electricity per month", "month", timedelta(days=365), "%m/%Y"),
        ):
            points = await _consumption(conn, hh.id, res, span, fmt)
            parts.append(f"<h3>{title}</h3>" + bar_chart(title, points, "kWh"))
    else:
        parts.append("<p>You have not agreed to keep daily totals, so none are shown.</p>")
    parts.append("</section>")

    anomalies = await api_reads.anomalies(conn, household_id=hh.id, limit=20)
    parts.append('<section aria-labelledby="an"><h2 id="an">Unusual consumption</h2>')
    if anomalies:
        items = "".join(
            f"<li><strong>{a.start_ts.astimezone(PARIS):%d/%m/%Y %H:%M}</strong>: "
            f"{escape(a.reason)}</li>"
            for a in anomalies
        )
        parts.append(f"<ul>{items}</ul>")
    else:
        parts.append("<p>Nothing unusual was found.</p>")
    parts.append("</section>")

    parts.append('<section aria-labelledby="ins"><h2 id="ins">Insulation estimate</h2>')
    assessed = await api_reads.assessments(conn, household_id=hh.id, building_id=hh.building_id)
    if assessed and assessed[0].status == "ok" and assessed[0].label:
        a = assessed[0]
        heat_loss = (
            f"Heat loss: about {a.hlc_w_per_k:.0f} W per degree of difference between inside "
            "and outside; "
            if a.hlc_w_per_k is not None
            else f"Heat loss: not measured ({escape(a.status_reason or 'no heating seen')}); "
        )
        parts.append(
            f'<p>Estimated label <span class="label" aria-label="label {a.label}">{a.label}'
            f"</span> (a DPE estimate from your metered data, not an official DPE).</p>"
            f"<p>{heat_loss}{a.primary_kwh_per_m2 or 0:.0f} kWh of primary energy per m² "
            "and year.</p>"
        )
        n, labels = await api_reads.similar_labels(conn, hh.building_id)
        if n >= k:
            dist = ", ".join(f"{lab}: {c}" for lab, c in labels.items())
            parts.append(f"<p>Similar homes ({n}, same heating, similar age): {dist}.</p>")
        else:
            parts.append(
                f"<p>Too few similar homes (under {k}) to compare without revealing them.</p>"
            )
    else:
        reason = assessed[0].status_reason if assessed else None
        parts.append(
            "<p>No estimate yet: it needs about a year of heating data"
            + (f" ({escape(reason)})" if reason else "")
            + ".</p>"
        )
    parts.append("</section>")

    parts.append('<section aria-labelledby="dev"><h2 id="dev">My devices</h2><ul>')
    for d in await device_statuses(conn, state, hh):
        status = (
            '<span class="ok">connected</span>'
            if d.connected
            else '<span class="down">not connected</span>'
        )
        last = (
            f", last reading {d.last_reading_at.astimezone(PARIS):%d/%m/%Y %H:%M}"
            if d.last_reading_at
            else ""
        )
        c = d.connection
        parts.append(
            f"<li>{escape(d.device_format)} meter {d.meter_id}: {status}{last}. "
            f"Broker <code>{escape(c.host)}:{c.port}</code>, user "
            f"<code>{escape(c.username or '-')}</code>, topic <code>{escape(c.topic)}</code>"
            "</li>"
        )
    parts.append("</ul></section>")

    def box(name: str, label: str, checked: bool) -> str:
        on = " checked" if checked else ""
        return (
            f'<p><input type="checkbox" id="{name}" name="{name}" value="on"{on}> '
            f'<label for="{name}">{label}</label></p>'
        )

    parts.append(
        '<section aria-labelledby="con"><h2 id="con">My consents</h2>'
        '<form method="post" action="/household/consents">'
        + box("daily_totals", "Keep and show my daily totals", hh.consent_daily)
        + box(
            "load_curve",
            "Keep and show my hourly load curve (unticking deletes it, except today's)",
            hh.consent_load_curve,
        )
        + '<button type="submit">Save my choices</button></form>'
        '<form method="post" action="/household/logout"><button type="submit">Sign out'
        "</button></form></section>"
    )
    return _doc(f"{hh.display_name} — wattwatch", "".join(parts))


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    return {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}


@router.get("", response_class=HTMLResponse)
async def household_page(conn: Conn, state: State, caller: OptionalCaller) -> HTMLResponse:
    if caller is None or caller.household_id is None:
        return HTMLResponse(_login())
    return HTMLResponse(await _render(conn, state, caller))


@router.post("/login")
async def login(request: Request, conn: Conn) -> Response:
    token = (await _form(request)).get("token", "").strip()
    caller = await caller_of(conn, token) if token else None
    if caller is None or caller.household_id is None:
        return HTMLResponse(_login("That token is not valid."), status_code=401)
    response = RedirectResponse("/household", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=30 * 24 * 3600,
    )
    return response


@router.post("/consents")
async def consents(request: Request, conn: Conn, caller: OptionalCaller) -> Response:
    if caller is None or caller.household_id is None:
        return HTMLResponse(_login("Please sign in again."), status_code=401)
    form: dict[str, Any] = await _form(request)
    chosen = Consents(
        daily_totals=form.get("daily_totals") == "on", load_curve=form.get("load_curve") == "on"
    )
    await change_consents(conn, caller, caller.household_id, chosen)
    return RedirectResponse("/household", status_code=303)


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/household", status_code=303)
    response.delete_cookie(COOKIE)
    return response
