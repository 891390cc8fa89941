"""`provision line run|simulate` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from provision.errors import ExitCode

CONFIG = """
station = "st-cli"
registry = "reg.sqlite"
dialect = "native"
device_timeout = 1.0
poll_interval = 0.05
[ca]
cert = "ca.crt"
key = "ca.key"
"""


def test_line_run_prints_one_json_line_per_device_and_a_summary(cli, ca_dir: Path, jig) -> None:
    (ca_dir / "station.toml").write_text(CONFIG)
    result = cli(
        ["line", "run", ca_dir / "station.toml", "-p", jig(), "-p", jig(), "-n", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    devices = [d for d in lines if d["event"] == "device"]
    assert len(devices) == 5 and all(d["status"] == "ok" for d in devices)
    assert lines[-1]["event"] == "summary" and lines[-1]["counts"] == {"ok": 5}
    assert "line summary" in result.stderr
    shown = cli(
        ["registry", "show", devices[0]["device_id"], "-r", ca_dir / "reg.sqlite", "--json"]
    )
    assert json.loads(shown.stdout)["records"][0]["station"] == "st-cli"


def test_line_run_failures_exit_7_with_cause_in_summary(cli, ca_dir: Path) -> None:
    (ca_dir / "station.toml").write_text(CONFIG)
    port = f"sim://native?seed=3&flash={ca_dir / 'd.flash'}&silent_after=500"
    result = cli(["line", "run", ca_dir / "station.toml", "-p", port, "-n", "1", "--json"])
    assert result.exit_code == ExitCode.DEVICE
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["counts"] == {"failed": 1}
    assert list(summary["failures"]) == [json.loads(result.stdout.splitlines()[0])["error_code"]]


def test_line_run_bad_config_is_one_line_error(cli, tmp_path: Path) -> None:
    (tmp_path / "station.toml").write_text('station = "x"\n[ca]\ncert = "a"\n')
    result = cli(["line", "run", tmp_path / "station.toml"])
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.strip() == f"error: {tmp_path / 'station.toml'}: [ca] needs cert and key"


def test_line_run_missing_ca_key_file(cli, ca_dir: Path, jig) -> None:
    (ca_dir / "station.toml").write_text(CONFIG.replace('key = "ca.key"', 'key = "nope.key"'))
    result = cli(["line", "run", ca_dir / "station.toml", "-p", jig(), "-n", "1"])
    assert result.exit_code == ExitCode.INPUT
    assert "CA key file not found" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (ca_dir / "reg.sqlite").exists()


def test_line_simulate_serves_ptys_then_stops(cli) -> None:
    result = cli(["line", "simulate", "2", "--seconds", "0.3", "--json"])
    assert result.exit_code == 0, result.output
    ready = json.loads(result.stdout.splitlines()[0])
    assert ready["event"] == "ready" and len(ready["ports"]) == 2
    assert all(p.startswith("/dev/pts/") for p in ready["ports"])
    result = cli(["line", "simulate", "2", "--kind", "nope", "--seconds", "0.1"])
    assert result.exit_code == ExitCode.USAGE
