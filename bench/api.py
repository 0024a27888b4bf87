"""API latency and throughput: readings and anomalies endpoints over a year of 1,000 meters.

One run, real servers (PostgreSQL+TimescaleDB on a free loopback port, as the tests start it;
the API served by uvicorn in its own processes), a loopback load generator (asyncio streams,
HTTP/1.1 keep-alive):

(a) open loop   requests sent at a fixed rate (default 200 req/s), latency p50/p99 per endpoint
                — the target is p99 ≤ 50 ms at 200 req/s;
(b) closed loop ``--concurrency`` clients back to back: the most req/s the API sustains;
(c) naive       the same hourly series computed from raw readings (time_bucket over 15-minute
                rows) instead of the readings_hourly rollup, queried directly (no HTTP).

Dataset: ``--meters`` cumulative electricity meters with ``--days`` of hourly and daily rollups,
the last 7 days also as raw 15-minute readings, and ~1 anomaly per meter and month.

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio streams (one pool of
connections, no per-request parsing beyond status and Content-Length): httpx costs about a
millisecond of CPU per request, which on a 2-core machine is taken from the server it measures.
``--client httpx`` keeps the old generator for comparison.

Usage (from the repository root)::

    python -m bench.api [--meters 1000] [--days 365] [--rate 200] [--seconds 15]
                        [--concurrency 16] [--workers 2] [--keep /tmp/ww-bench-api]
                        [--profile /tmp/api.svg]

``--keep DIR`` keeps the seeded cluster in DIR and reuses it while meters and days match
(seeding takes about 50 s); ``--profile`` samples the API processes with py-spy during the
open loop. Prints a table and writes bench/results/api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import psycopg

from api.main import serve
from storage.migrate import migrate
from storage.tokens import create_engineer_token
from tests.fixtures.servers import TEST_PG_SETTINGS, fresh_database, running_postgres
from wattwatch.settings import Settings
from wattwatch.stack.postgres import EmbeddedPostgres
from wattwatch.stack.system import free_port

RESULTS = Path(__file__).parent / "results" / "api.json"

_SEED = """
INSERT INTO municipalities (name) VALUES ('Bench');
INSERT INTO buildings (name, municipality_id, floor_area_m2, year_built, heating_carrier)
SELECT 'b' || i, 1, 80, 1970, 'gas' FROM generate_series(1, %(n)s::int) i;
INSERT INTO meters (building_id, quantity, unit, cumulative, device_format, device_id)
SELECT i, 'electricity', 'kWh', true, 'own_json', 'bench-' || i
FROM generate_series(1, %(n)s::int) i;
INSERT INTO readings_hourly (meter_id, hour, consumption, mean, min, max, samples)
SELECT m, h, 0.5 + 0.4 * sin(extract(hour FROM h) / 3.8), 1000, 999, 1001, 4
FROM generate_series(1, %(n)s::int) m,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 hour',
                     interval '1 hour') h;
INSERT INTO readings_daily (meter_id, day, consumption, mean, min, max, samples)
SELECT meter_id, (hour AT TIME ZONE 'Europe/Paris')::date, sum(consumption), avg(mean),
       min(min), max(max), sum(samples)
FROM readings_hourly GROUP BY 1, 2;
INSERT INTO readings (meter_id, ts, value)
SELECT m, t, 1000 + extract(epoch FROM t - %(raw_start)s) / 7200.0
FROM generate_series(1, %(n)s::int) m,
     generate_series(%(raw_start)s::timestamptz, %(end)s::timestamptz - interval '15 minutes',
                     interval '15 minutes') t;
INSERT INTO anomalies (meter_id, kind, source, start_ts, end_ts, severity, reason)
SELECT 1 + (i %% %(n)s::int),
       (ARRAY['spike', 'flatline', 'level_shift', 'night_baseload'])[1 + i %% 4],
       'processing', s, s + interval '3 hours', 2 + (i %% 9), 'bench anomaly'
FROM (SELECT i,
             %(start)s::timestamptz + (i * 7919 %% (%(days)s::int * 24)) * interval '1 hour' AS s
      FROM generate_series(1, %(n)s::int * %(days)s::int / 30) i) x;
"""

_NAIVE = """
SELECT time_bucket('1 hour', ts) AS hour, max(value) - min(value), avg(value), count(*)
FROM readings WHERE meter_id = %s AND ts >= %s AND ts < %s GROUP BY 1 ORDER BY 1
"""


def seed(url: str, *, meters: int, days: int) -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    with psycopg.connect(url) as conn:
        params = {"n": meters, "start": start, "end": end,
                  "raw_start": end - timedelta(days=7), "days": days}  # fmt: skip
        for statement in _SEED.split(";\n"):
            if statement.strip() and not statement.strip().startswith("ANALYZE"):
                conn.execute(statement, params)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    return start, end


@contextlib.contextmanager
def seeded_database(
    keep: Path | None, *, meters: int, days: int
) -> Iterator[tuple[str, datetime, float]]:
    """A seeded database as (url, end of the data, seconds spent seeding; 0 when reused).

    With ``keep`` the cluster lives in that folder and is reused while ``meters`` and ``days``
    match; its data ends where it ended when seeded (the raw week then lies in the past).
    """
    if keep is None:
        with running_postgres() as pg:
            url = fresh_database(pg)
            t0 = time.perf_counter()
            _, end = seed(url, meters=meters, days=days)
            yield url, end, time.perf_counter() - t0
        return
    keep.mkdir(parents=True, exist_ok=True)
    keep.chmod(0o755)
    marker = keep / "seeded.json"
    wanted = {"meters": meters, "days": days}
    if marker.is_file() and {k: v for k, v in json.loads(marker.read_text()).items()
                             if k != "end"} != wanted:  # fmt: skip
        shutil.rmtree(keep / "postgres", ignore_errors=True)
        marker.unlink()
    pg = EmbeddedPostgres(root=keep / "postgres", port=free_port(), settings=TEST_PG_SETTINGS)
    pg.start()
    try:
        url = pg.url()
        seed_s = 0.0
        if marker.is_file():
            end = datetime.fromisoformat(json.loads(marker.read_text())["end"])
        else:
            with psycopg.connect(url) as conn:
                migrate(conn)
            t0 = time.perf_counter()
            _, end = seed(url, meters=meters, days=days)
            seed_s = time.perf_counter() - t0
            marker.write_text(json.dumps({**wanted, "end": end.isoformat()}))
        yield url, end, seed_s
    finally:
        pg.stop()


def serve_api(url: str, port: int, workers: int) -> None:
    """The API processes (their own interpreters and GILs), as `wattwatch api` serves it."""
    settings = Settings(database_url=url, api_pool_size=16 // workers)
    serve(settings, database_url=url, mqtt_url="mqtt://127.0.0.1:1883", host="127.0.0.1",
          port=port, workers=workers, log_level="warning")  # fmt: skip


class RawClient:
    """HTTP/1.1 GETs over a pool of keep-alive connections (at most ``size`` open)."""

    def __init__(self, base: str, token: str, *, size: int = 64) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {token}\r\n\r\n"
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(size)

    async def get(self, path: str, params: dict[str, Any]) -> int:
        """The status of ``GET path?params``; the body is read and dropped."""
        request = f"GET {path}?{urlencode(params)} HTTP/1.1\r\n{self.head}".encode()
        async with self.slots:
            while self.idle:
                conn = self.idle.pop()
                try:  # the server closes keep-alives idle for 5 s: then take the next one
                    return await self._exchange(conn, request)
                except (asyncio.IncompleteReadError, ConnectionError):
                    conn[1].close()
            return await self._exchange(await asyncio.open_connection(self.host, self.port),
                                        request)  # fmt: skip

    async def _exchange(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
    ) -> int:
        reader, writer = conn
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lower = head.lower()
        at = lower.index(b"content-length:") + 15
        await reader.readexactly(int(lower[at : lower.index(b"\r\n", at)]))
        if b"connection: close" in lower:
            writer.close()
        else:
            self.idle.append(conn)
        return int(head[9:12])

    async def aclose(self) -> None:
        for _, writer in self.idle:
            writer.close()


def _client(kind: str, base: str, token: str) -> Any:
    if kind == "raw":
        return contextlib.aclosing(RawClient(base, token))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return httpx.AsyncClient(base_url=base, limits=limits, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip


async def _status(client: Any, path: str, params: dict[str, Any]) -> int:
    if isinstance(client, RawClient):
        return await client.get(path, params)
    try:
        r = await client.get(path, params=params)
    except httpx.HTTPError:  # timeouts in its own pool queue, closed keep-alives: errors
        return 0
    return int(r.status_code)


def requests_for(meters: int, end: datetime, rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """One request of the mix: half readings (hour over 7 days, day over a year), half
    anomalies (by building, by kind and severity)."""
    m = rng.randint(1, meters)
    pick = rng.random()
    if pick < 0.25:
        q = {"resolution": "hour", "start": (end - timedelta(days=7)).isoformat(),
             "end": end.isoformat()}  # fmt: skip
        return "readings_hour_7d", f"/v1/meters/{m}/readings", q
    if pick < 0.5:
        q = {"resolution": "day", "start": (end - timedelta(days=365)).isoformat(),
             "end": end.isoformat()}  # fmt: skip
        return "readings_day_1y", f"/v1/meters/{m}/readings", q
    if pick < 0.75:
        return "anomalies_building", "/v1/anomalies", {"building_id": m, "limit": 50}
    return "anomalies_kind", "/v1/anomalies", {"kind": "spike", "min_severity": 5, "limit": 50}


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {"n": 0}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"n": len(values), "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3,
            "max_ms": values[-1] * 1e3}  # fmt: skip


async def open_loop(
    base: str, token: str, *, rate: float, seconds: float, meters: int, end: datetime,
    client_kind: str = "raw",
) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(1)
    lat: dict[str, list[float]] = {}
    errors = 0
    async with _client(client_kind, base, token) as client:

        async def one(name: str, path: str, params: dict[str, Any]) -> None:
            nonlocal errors
            t0 = time.perf_counter()
            status = await _status(client, path, params)
            dt = time.perf_counter() - t0
            if status != 200:
                errors += 1
            lat.setdefault(name, []).append(dt)

        tasks = []
        t_start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = t_start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(*requests_for(meters, end, rng))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t_start
    out: dict[str, Any] = {name: percentiles(v) for name, v in sorted(lat.items())}
    out["all"] = percentiles([x for v in lat.values() for x in v])
    out["achieved_rps"] = n / elapsed
    out["errors"] = errors
    return out


async def closed_loop(
    base: str, token: str, *, concurrency: int, seconds: float, meters: int, end: datetime,
    client_kind: str = "raw",
) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(2)
    done = 0
    errors = 0
    lat: list[float] = []
    stop = time.perf_counter() + seconds
    async with _client(client_kind, base, token) as client:

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < stop:
                _, path, params = requests_for(meters, end, rng)
                t0 = time.perf_counter()
                if await _status(client, path, params) != 200:
                    errors += 1
                lat.append(time.perf_counter() - t0)
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"rps": done / elapsed, "errors": errors, **percentiles(lat)}


def naive(url: str, *, meters: int, end: datetime, n: int = 200) -> dict[str, Any]:
    rng = random.Random(3)
    lat = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute(_NAIVE, (rng.randint(1, meters), end - timedelta(days=7), end)).fetchall()
            lat.append(time.perf_counter() - t0)
    return percentiles(lat)


def profiled(pid: int, svg: Path | None, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy sampling process ``pid`` and its children for ``seconds``; ``.txt``: collapsed
    stacks instead of a flame graph."""
    if svg is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    fmt = ["--format", "raw"] if svg.suffix == ".txt" else []
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "-o", str(svg),
         "-d", str(int(seconds) + 1), *fmt],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--keep", type=Path, help="keep and reuse the seeded cluster here")
    parser.add_argument("--profile", type=Path, help="py-spy flame graph of the open loop")
    args = parser.parse_args()
    with seeded_database(args.keep, meters=args.meters, days=args.days) as (url, end, seed_s):
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT count(*) FROM readings_hourly").fetchone()

            async def token() -> str:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
                    return await create_engineer_token(c, "bench")

            tok = asyncio.run(token())
        port = free_port()
        proc = mp.get_context("spawn").Process(
            target=serve_api, args=(url, port, args.workers), daemon=False
        )
        proc.start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API did not start")
            time.sleep(0.2)
        try:
            loop = {"meters": args.meters, "end": end, "client_kind": args.client}
            asyncio.run(open_loop(base, tok, rate=args.rate, seconds=2, **loop))  # warm-up
            assert proc.pid is not None
            spies = [profiled(proc.pid, args.profile, args.seconds)]
            if args.profile is not None:  # the load generator too: is it the bottleneck?
                gen = args.profile.with_stem(args.profile.stem + "-client")
                spies.append(profiled(os.getpid(), gen, args.seconds))
            ol = asyncio.run(open_loop(base, tok, rate=args.rate, seconds=args.seconds, **loop))
            for spy in spies:
                if spy is not None:
                    spy.wait(30)
            cl = asyncio.run(closed_loop(base, tok, concurrency=args.concurrency,
                                         seconds=min(args.seconds, 10), **loop))  # fmt: skip
        finally:
            proc.terminate()
            proc.join(10)
        nv = naive(url, meters=args.meters, end=end)
    result = {
        "when": datetime.now(UTC).isoformat(), "machine": platform.platform(),
        "args": vars(args), "hourly_rows": rows[0] if rows else None, "seed_s": seed_s,
        "open_loop": ol, "closed_loop": cl, "naive_hour_from_raw_sql": nv,
    }  # fmt: skip
    print(f"dataset: {args.meters} meters × {args.days} days, {result['hourly_rows']:,} hourly "
          f"rows (seeded in {seed_s:.0f} s)")  # fmt: skip
    print(f"\n(a) open loop at {args.rate:.0f} req/s for {args.seconds:.0f} s "
          f"(achieved {ol['achieved_rps']:.0f} req/s, {ol['errors']} errors)")  # fmt: skip
    print(f"{'endpoint':<22}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, v in ol.items():
        if isinstance(v, dict) and v.get("n"):
            print(f"{name:<22}{v['n']:>6}{v['p50_ms']:>10.1f}{v['p99_ms']:>10.1f}"
                  f"{v['max_ms']:>10.1f}")  # fmt: skip
    print(f"\n(b) closed loop, {args.concurrency} clients: {cl['rps']:.0f} req/s, "
          f"p50 {cl['p50_ms']:.1f} ms, p99 {cl['p99_ms']:.1f} ms, "
          f"{cl['errors']} errors")  # fmt: skip
    print(f"(c) naive hourly-from-raw SQL (7 days, no HTTP): p50 {nv['p50_ms']:.1f} ms, "
          f"p99 {nv['p99_ms']:.1f} ms")  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))


if __name__ == "__main__":
    main()
