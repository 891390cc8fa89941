"""A claim left by a killed run of this station (SIGKILL, power loss) does not block the
device for the 15-minute lease: the station frees its own claims when it starts. Another
station's claim is still respected."""

from __future__ import annotations

from pathlib import Path

import provision.device
from provision.line import Line
from provision.registry import Result, open_registry

CONFIG = """
station = "st-1"
registry = "registry.sqlite"
dialect = "native"
device_timeout = 1.0
poll_interval = 0.05
[ca]
cert = "ca.crt"
key = "ca.key"
[[sec_tags]]
sec_tag = 42
client = true
"""


def _device_id(url: str) -> str:
    with provision.device.open(url, dialect="native") as dev:
        return dev.info().device_id


def test_own_stale_claim_is_released_at_start(cli, ca_dir: Path, tmp_path: Path) -> None:
    url = f"sim://native?seed=21&flash={tmp_path / 'dev.flash'}"
    device_id = _device_id(url)
    (ca_dir / "station.toml").write_text(CONFIG)
    with open_registry(str(ca_dir / "registry.sqlite")) as reg:
        reg.claim(device_id, "st-1")  # what a run killed mid-device leaves
    result = cli(["line", "run", ca_dir / "station.toml", "-p", url, "-n", "1", "--no-live"])
    assert result.exit_code == 0, result.output
    assert "released 1 claim(s) station st-1 still held" in result.output
    assert device_id in result.output
    with open_registry(str(ca_dir / "registry.sqlite")) as reg:
        assert reg.latest(device_id).result is Result.OK
        assert reg.claims() == [] and reg.verify().ok


def test_another_stations_claim_still_blocks(station, tmp_path: Path) -> None:
    url = f"sim://native?seed=22&flash={tmp_path / 'dev.flash'}"
    device_id = _device_id(url)
    cfg = station([url])
    with open_registry(cfg.registry) as reg:
        reg.claim(device_id, "st-2")
    outcomes: list = []
    line = Line(cfg, operator="tester", limit=1, emit=outcomes.append)
    assert line.reclaimed == []
    summary = line.run()
    assert summary.counts == {"busy": 1}
    assert outcomes[0].error_code == "registry.claimed"
    with open_registry(cfg.registry) as reg:
        assert reg.claims() == [(device_id, "st-2")]
