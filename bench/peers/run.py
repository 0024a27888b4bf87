"""Peers on the same stream as bench/ingest.py's (b): Node-RED 4.1 and mq-bridge 1.2 draining a
backlog of one-reading SenML messages into the same ``readings`` table.

Install them first (outside the repository): ``bash bench/peers/install.sh``.
Run: ``python -m bench.peers.run [--messages 100000]``; prints a line per peer, and the figures
go into bench/results/ingest.json under "peers" (run it after ``python -m bench.ingest``).

What each peer guarantees (read before comparing rates):
- Node-RED (node_red_flows.json): its MQTT client acknowledges each QoS 1 message on receipt,
  before the function node's batched INSERT (5,000 rows, pg 8, via functionGlobalContext) runs;
  a crash or a failed INSERT loses the batch (the error is only logged): at most once.
- mq-bridge (mq_bridge_route.yaml): acknowledges after the sqlx sink (at least once, ON CONFLICT
  absorbs replays), but a non-retryable SQL error drops and acknowledges the message (seen here
  with a type error: every message dropped), and the ``::timestamptz`` cast its docs advise
  makes it fall back to one INSERT per message.
Both are timed from process start (their start-up included) and from first to last row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.ingest import (
    RESULTS,
    CpuMeter,
    _pid_from,
    create_session,
    end_session,
    expected_rows,
    per_message_cpu,
    publish,
    register_devices,
    servers,
    verify,
)
from tests.fixtures.servers import fresh_database, make_shared_tmpdir
from wattwatch.stack.system import free_port

HERE = Path(__file__).resolve().parent
PEERS_DIR = Path(os.environ.get("WATTWATCH_PEERS_DIR", "/tmp/wattwatch-peers"))


def meter_ids(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        return dict(conn.execute("SELECT device_id, id FROM meters").fetchall())


def mq_bridge_cmd(mqtt_url: str, db_url: str, client_id: str, work: Path) -> list[str]:
    work.mkdir(parents=True, exist_ok=True)
    meters = work / "meters.json"
    meters.write_text(json.dumps(meter_ids(db_url)))
    return [
        str(PEERS_DIR / "mqb-venv" / "bin" / "python"),
        str(HERE / "mq_bridge_peer.py"),
        str(HERE / "mq_bridge_route.yaml"),
        mqtt_url,
        db_url,
        client_id,
        str(meters),
    ]


def node_red_cmd(mqtt_url: str, db_url: str, client_id: str, work: Path) -> list[str]:
    host, port = mqtt_url.split("://", 1)[1].rsplit(":", 1)
    flows = json.loads((HERE / "node_red_flows.json").read_text())
    for node in flows:
        if node.get("type") == "mqtt-broker":
            node.update(broker=host, port=port, clientid=client_id)
    work.mkdir(parents=True, exist_ok=True)
    (work / "flows.json").write_text(json.dumps(flows))
    settings = (HERE / "node_red_settings.js").read_text()
    (work / "settings.js").write_text(settings)
    os.environ["WATTWATCH_PEER_DATABASE_URL"] = db_url
    os.environ["NODE_PATH"] = str(PEERS_DIR / "nodered" / "node_modules")
    red = PEERS_DIR / "nodered" / "node_modules" / "node-red" / "red.js"
    return [
        "node",
        str(red),
        "--userDir",
        str(work),
        "--settings",
        str(work / "settings.js"),
        "--port",
        str(free_port()),
        str(work / "flows.json"),
    ]


PEERS = {"mq-bridge 1.2": mq_bridge_cmd, "Node-RED 4.1": node_red_cmd}


def watch_rows(db_url: str, n: int, stall_s: float = 30) -> tuple[float, int, float]:
    """Poll the row count: (when rows first appeared, how many, when all ``n`` were there)."""
    first_at, first_rows, last, moved = 0.0, 0, -1, time.monotonic()
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
            count = int(row[0]) if row else 0
            if count and not first_rows:
                first_at, first_rows = time.time(), count
            if count >= n:
                return first_at, first_rows, time.time()
            if count != last:
                last, moved = count, time.monotonic()
            elif time.monotonic() - moved > stall_s:
                raise TimeoutError(f"rows stuck at {count} of {n} for {stall_s} s")
            time.sleep(0.05)


def drain(pg: Any, broker: Any, cpu: CpuMeter, name: str, n: int, work: Path) -> dict[str, Any]:
    tag = name.split(maxsplit=1)[0].lower().replace("-", "")
    client_id = f"bench-peer-{tag}"
    db = fresh_database(pg)
    register_devices(db)
    create_session(broker.url, client_id)
    pub = publish(broker.url, "one", n, publishers=2, tag=f"peer-{tag}")
    cmd = PEERS[name](broker.url, db, client_id, work / tag)
    log = work / f"{tag}.log"
    cpu.begin()
    started = time.time()
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=os.environ.copy())
    try:
        first_at, first_rows, visible = watch_rows(db, n)
        usage = cpu.end(proc.pid)
    except Exception as exc:  # noqa: BLE001 - report what failed, with the peer's log
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        return {"error": f"{exc}; log tail: {log.read_text(errors='replace')[-1500:]}"}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        end_session(broker.url, client_id)
    seconds = visible - started  # from process start: includes the peer's own start-up
    steady = (n - first_rows) / (visible - first_at)  # first rows seen → last row seen
    return per_message_cpu(
        {
            "messages": n,
            "readings": n,
            "seconds": round(seconds, 3),
            "msgs_per_s": round(n / seconds),
            "readings_per_s": round(n / seconds),
            "steady_msgs_per_s": round(steady),
            "publish": pub,
            "check": verify(db, expected_rows("one", n), n),
            "cpu_s": usage,
            "note": "msgs_per_s from process start (start-up included); steady_msgs_per_s from "
            "the first committed rows to the last",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--peers", nargs="+", default=list(PEERS))
    args = parser.parse_args()
    work = make_shared_tmpdir("wattwatch-bench-peers-")
    results: dict[str, Any] = {}
    try:
        run_all(args, work, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if RESULTS.exists():
        data = json.loads(RESULTS.read_text())
        data["peers"] = {"command": "python -m bench.peers.run", "runs": results}
        RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def run_all(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    with servers() as (pg, broker):
        cpu = CpuMeter(
            broker_pid=_pid_from(broker.pid_file),
            postmaster_pid=_pid_from(pg.data_dir / "postmaster.pid"),
        )
        for name in args.peers:
            results[name] = drain(pg, broker, cpu, name, args.messages, work)
            row = results[name]
            if "error" in row:
                print(f"{name}: FAILED: {row['error']}")
            else:
                print(
                    f"{name}: {row['msgs_per_s']:,} msg/s from process start, "
                    f"{row['steady_msgs_per_s']:,} msg/s first→last row, over "
                    f"{row['messages']:,} messages; all arrived: {row['check']['all_arrived']}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
