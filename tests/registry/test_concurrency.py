"""Two stations (two real processes) on one registry never share a serial or a device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from provision.registry import open_registry

WORKER = Path(__file__).with_name("registry_worker.py")
DEVICES = 60
SERIALS = 150


def test_two_processes_never_hand_out_the_same_serial_or_device(
    registry_url: str, tmp_path: Path
) -> None:
    open_registry(registry_url).close()  # schema exists before the race starts
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parent), *sys.path])}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                registry_url,
                station,
                str(go),
                str(DEVICES),
                str(SERIALS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for station in ("st-a", "st-b")
    ]
    # Start both together once both have imported and connected.
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.{s}.ready").exists() for s in ("st-a", "st-b")):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), "a worker died before the start"
        time.sleep(0.01)
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    # allocate_serial() and the serial each won claim carries draw on the same counter.
    serials = [s for r in results for s in r["serials"]]
    assert len(serials) >= 2 * SERIALS + DEVICES
    assert len(set(serials)) == len(serials), "a serial was handed out twice"

    recorded = [d for r in results for d in r["recorded"]]
    assert sorted(recorded) == [f"uid-{i:04d}" for i in range(DEVICES)], "device recorded twice"
    # Both stations really competed (otherwise the test proves nothing).
    assert all(r["recorded"] for r in results), [len(r["recorded"]) for r in results]

    with open_registry(registry_url) as reg:
        report = reg.verify()
        assert report.ok, report.problems
        assert report.rows == DEVICES
        assert reg.claims() == []
        stored = [r.cert_serial for r in reg.iter_records()]
    assert len(set(stored)) == DEVICES
    # What was recorded is what the claims handed out.
    assert {int(s, 16) for s in stored} <= set(serials)
