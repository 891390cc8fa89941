"""Registry rows per second with 4 stations writing at once, with and without group commit.

    .venv/bin/python bench/bench_registry.py [--stations 4] [--ports 8] [--devices 150]

Each station is its own process with `--ports` threads (a line's ports); each thread does
what the line does per device: claim (which allocates the serial) and record (the chained
row, releasing the claim), each durable before it returns (SQLite WAL with synchronous=FULL,
PostgreSQL with fsync and synchronous_commit on). Figures: rows/s over all stations, from the
start signal to the last station's last row (goal >= 2,000 with group commit), and
transactions per row; each run ends with `verify` (the chain intact), no claim left and one
row per device. SQLite on a file in a temp dir; PostgreSQL from PROVISION_TEST_PG_URL (its
fsync settings are printed) or a throwaway cluster started with .ci/services/postgres.sh with
PostgreSQL's durable defaults (skipped, with the reason, when it cannot start).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def worker(url: str, station: str, ports: int, devices: int, group: bool, go: str) -> None:
    from provision.registry import Entry, Result, open_registry

    reg = open_registry(url, group_commit=group)
    Path(f"{go}.{station}.ready").touch()
    while not Path(go).exists():
        time.sleep(0.001)
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine

    def port(p: int) -> None:
        for i in range(devices // ports):
            device_id = f"{station}-{p}-{i}"
            claim = reg.claim(device_id, station)
            now = "2026-01-01T00:00:00.000+00:00"
            reg.record(
                Entry(
                    device_id=device_id,
                    result=Result.OK,
                    station=station,
                    operator="bench",
                    started_at=now,
                    finished_at=now,
                    cert_serial=f"{claim.serial:x}",
                    sec_tags=(42,),
                ),
                claim=claim,
            )

    threads = [threading.Thread(target=port, args=(p,)) for p in range(ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = time.monotonic()
    rows = ports * (devices // ports)
    print(json.dumps({"rows": rows, "start": start, "end": end, "commits": reg.commits}))
    reg.close()


def run(url: str, stations: int, ports: int, devices: int, group: bool, tmp: Path) -> dict:
    from provision.registry import open_registry

    open_registry(url).close()  # the schema exists before the race
    go = tmp / f"go-{secrets.token_hex(4)}"
    names = [f"st{i}" for i in range(stations)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                url,
                name,
                str(ports),
                str(devices),
                "1" if group else "0",
                str(go),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    while not all(Path(f"{go}.{n}.ready").exists() for n in names):
        if any(p.poll() is not None for p in procs):
            raise SystemExit("a station process died before the start")
        time.sleep(0.005)
    t0 = time.monotonic()
    go.touch()
    results = [json.loads(p.communicate()[0]) for p in procs]
    # Not the processes' exit: the registry's time is until the last row is durable.
    wall = max(r["end"] for r in results) - t0
    rows = sum(r["rows"] for r in results)
    with open_registry(url) as reg:
        assert reg.count() == rows and reg.verify().ok and reg.claims() == []
        devices_seen = {r.device_id for r in reg.iter_records()}
        serials = {r.cert_serial for r in reg.iter_records()}
        assert len(devices_seen) == rows and len(serials) == rows
    return {
        "rows": rows,
        "rows_per_s": rows / wall,
        "commits_per_row": sum(r["commits"] for r in results) / rows,
    }


def _postgres() -> tuple[str | None, str, str | None]:
    url = os.environ.get("PROVISION_TEST_PG_URL")
    if url:
        return url, "", None
    from service_scripts import start_service

    env = {k: v for k, v in os.environ.items() if k != "PROVISION_TEST_PG_DIR"}
    env["PROVISION_PG_DURABLE"] = "1"
    values, reason = start_service("postgres.sh", "start PostgreSQL", env)
    if values is None:
        return None, reason, None
    return values["PROVISION_TEST_PG_URL"], "", values["PROVISION_TEST_PG_DIR"]


def _fresh_schema(base: str) -> str:
    from urllib.parse import quote

    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-c search_path={schema}')}"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, station, ports, devices, group, go = sys.argv[2:8]
        worker(url, station, int(ports), int(devices), group == "1", go)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stations", type=int, default=4)
    ap.add_argument("--ports", type=int, default=8)
    ap.add_argument("--devices", type=int, default=160, help="per station")
    args = ap.parse_args()
    print(
        f"registry: {args.stations} stations x {args.ports} ports, {args.devices} devices per "
        "station (claim + record each, durable before returning)"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        backends: list[tuple[str, object]] = [("sqlite", lambda: str(tmp / "reg.sqlite"))]
        pg_url, why, pg_dir = _postgres()
        if pg_url:
            backends.append(("postgresql", lambda: _fresh_schema(pg_url)))
            import psycopg

            with psycopg.connect(pg_url) as conn:
                settings = {
                    name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                    for name in ("fsync", "synchronous_commit")
                }
            print("postgresql: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
        else:
            print(f"postgresql: skipped ({why})")
        try:
            for name, make_url in backends:
                for group in (False, True):
                    if name == "sqlite":
                        for f in tmp.glob("reg.sqlite*"):
                            f.unlink()
                    r = run(make_url(), args.stations, args.ports, args.devices, group, tmp)
                    label = "group commit" if group else "one commit each"
                    verdict = ("OK" if r["rows_per_s"] >= 2000 else "MISSED") if group else ""
                    print(
                        f"{name:10s} {label:16s} {r['rows_per_s']:7.0f} rows/s, "
                        f"{r['commits_per_row']:.2f} transactions per row"
                        + (f" (goal >= 2000) {verdict}" if group else "")
                    )
        finally:
            if pg_dir:
                from service_scripts import stop_service

                stop_service("postgres.sh", pg_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
