"""A factory-line station with the esp32 dialect: host keys, MAC as device id, re-runs skip."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from provision.line import Line
from provision.line.config import config_from_dict
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key
from provision.registry import Result, open_registry

pytest.importorskip("esptool")


def _station(tmp_path: Path, ports: list[str]) -> Any:
    ca = create_root_ca("ESP Line CA")
    (tmp_path / "ca.crt").write_bytes(cert_pem(ca.cert))
    (tmp_path / "ca.key").write_bytes(serialize_private_key(ca.key))
    (tmp_path / "ca.key").chmod(0o600)
    data = {
        "station": "esp-1",
        "registry": "registry.sqlite",
        "dialect": "esp32",
        "ports": ports,
        "device_timeout": 2.0,
        "retries": 2,
        "poll_interval": 0.05,
        "ca": {"cert": "ca.crt", "key": "ca.key"},
        "sec_tags": [{"sec_tag": 42, "client": True}],
    }
    return config_from_dict(data, tmp_path)


def test_esp32_jigs_provision_with_host_keys_and_mac_ids_and_rerun_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The partition does not record its sec_tag: the line names it, so a re-run's verify
    # finds what the first run wrote.
    monkeypatch.setenv("PROVISION_ESP32_SEC_TAG", "42")
    name = f"esp{secrets.token_hex(3)}"
    flash = tmp_path / "one.flash"
    cfg = _station(
        tmp_path, [f"jig://{name}a?kind=esp32&baud=0", f"jig://{name}b?kind=esp32&baud=0"]
    )
    outcomes: list = []
    summary = Line(cfg, operator="t", emit=outcomes.append, limit=4).run()
    assert summary.counts == {"ok": 4}
    ids = [o.device_id for o in outcomes]
    assert len(set(ids)) == 4 and all(i.startswith("24:0a:c4:") for i in ids)
    with open_registry(cfg.registry) as reg:
        for device_id in ids:
            rec = reg.latest(device_id)
            assert rec.result is Result.OK
            cert = x509.load_pem_x509_certificate(rec.cert_pem.encode())
            assert cert.subject.rfc4514_string() == f"CN={device_id}"
    # The same board again (a jig over one flash file keeps its MAC and flash): skipped.
    port = f"jig://{name}c?kind=esp32&baud=0&flash={flash}&mac=24:0a:c4:aa:bb:cc"
    one = _station(tmp_path, [port])
    first: list = []
    Line(one, operator="t", emit=first.append, limit=1).run()
    again: list = []
    Line(one, operator="t", emit=again.append, limit=1).run()
    assert [o.status.value for o in first] == ["ok"]
    assert [o.status.value for o in again] == ["skipped"]


def test_esp32_pty_jigs_as_line_simulate_serves_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `line simulate --dialect esp32` serves pseudo-terminals: a device path, so esptool gets
    # the real pyserial port (its reset sequence on a pty) rather than jig://'s adapter.
    from provision.line.simulate import start_jigs

    monkeypatch.setenv("PROVISION_ESP32_SEC_TAG", "42")
    jigs = start_jigs(2, kind="esp32", baud=None, prefix=f"esp{secrets.token_hex(3)}-")
    try:
        cfg = _station(tmp_path, [j.path for j in jigs])
        outcomes: list = []
        summary = Line(cfg, operator="t", emit=outcomes.append, per_port=2).run()
    finally:
        for j in jigs:
            j.stop.set()
    assert summary.counts == {"ok": 4}
    ids = {o.device_id for o in outcomes}
    assert len(ids) == 4 and all(i.startswith("24:0a:c4:") for i in ids)
    with open_registry(cfg.registry) as reg:
        assert all(reg.latest(i).result is Result.OK for i in ids)
