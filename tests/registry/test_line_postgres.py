"""Two stations of one line sharing a PostgreSQL registry, run at the same time."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from provision.line import Line
from provision.line.config import config_from_dict
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key
from provision.registry import open_registry


@pytest.mark.postgres
def test_two_stations_share_one_postgres_registry(pg_url: str, tmp_path: Path) -> None:
    ca = create_root_ca("Shared CA")
    (tmp_path / "ca.crt").write_bytes(cert_pem(ca.cert))
    (tmp_path / "ca.key").write_bytes(serialize_private_key(ca.key))
    lines = [
        Line(
            config_from_dict(
                {
                    "station": name,
                    "registry": pg_url,
                    "ports": [f"jig://pg-{name}-a", f"jig://pg-{name}-b"],
                    "ca": {"cert": "ca.crt", "key": "ca.key"},
                },
                tmp_path,
            ),
            operator="tester",
            limit=8,
        )
        for name in ("st-a", "st-b")
    ]
    summaries = []
    threads = [threading.Thread(target=lambda ln=ln: summaries.append(ln.run())) for ln in lines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [s.counts for s in summaries] == [{"ok": 8}, {"ok": 8}]
    with open_registry(pg_url) as reg:
        report = reg.verify()
        assert report.ok and report.rows == 16
        stations = {r.station for r in reg.iter_records()}
        serials = [r.cert_serial for r in reg.iter_records()]
    assert stations == {"st-a", "st-b"}
    assert len(set(serials)) == 16
