"""Stations (real processes) on one registry never share a serial or a device, and their
rows form one intact chain, with one port each and with several ports whose writes go
through group commits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from provision.registry import open_registry

WORKER = Path(__file__).with_name("registry_worker.py")


def _race(
    registry_url: str, go: Path, stations: list[str], devices: int, serials: int, ports: int
) -> list[dict]:
    """Run one worker process per station, started together; their JSON results."""
    open_registry(registry_url).close()  # schema exists before the race starts
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parent), *sys.path])}
    args = [registry_url, "", str(go), str(devices), str(serials), str(ports)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *args[:1], station, *args[2:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for station in stations
    ]
    # Start them together once all have imported and connected.
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.{s}.ready").exists() for s in stations):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), "a worker died before the start"
        time.sleep(0.01)
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err  # a port thread that died
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _check(registry_url: str, results: list[dict], devices: int, serial_count: int) -> None:
    # allocate_serial() and the serial each won claim carries draw on the same counter.
    serials = [s for r in results for s in r["serials"]]
    assert len(serials) >= len(results) * serial_count + devices
    assert len(set(serials)) == len(serials), "a serial was handed out twice"

    recorded = [d for r in results for d in r["recorded"]]
    assert sorted(recorded) == [f"uid-{i:04d}" for i in range(devices)], "device recorded twice"
    # The stations really competed (otherwise the test proves nothing); on a loaded machine
    # one of three may start late and find every device taken.
    competing = sum(1 for r in results if r["recorded"])
    assert competing >= min(2, len(results)), [len(r["recorded"]) for r in results]

    with open_registry(registry_url) as reg:
        report = reg.verify()
        assert report.ok, report.problems
        assert report.rows == devices
        assert reg.claims() == []
        stored = [r.cert_serial for r in reg.iter_records()]
    assert len(set(stored)) == devices
    # What was recorded is what the claims handed out.
    assert {int(s, 16) for s in stored} <= set(serials)


def test_two_processes_never_hand_out_the_same_serial_or_device(
    registry_url: str, tmp_path: Path
) -> None:
    results = _race(registry_url, tmp_path / "go", ["st-a", "st-b"], 60, 150, ports=1)
    _check(registry_url, results, 60, 150)


def test_stations_with_several_ports_keep_one_intact_chain(
    registry_url: str, tmp_path: Path
) -> None:
    """Three stations of four ports each: every port's claim and record goes through its
    station's group commits while the other stations write to the same chain."""
    stations = ["st-a", "st-b", "st-c"]
    results = _race(registry_url, tmp_path / "go", stations, 90, 20, ports=4)
    _check(registry_url, results, 90, 20)
