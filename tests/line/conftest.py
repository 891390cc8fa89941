"""Line fixtures: a CA on disk, station configs, unique simulated jigs per test."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provision.line.config import StationConfig, config_from_dict
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    ca = create_root_ca("Line Test CA")
    (tmp_path / "ca.crt").write_bytes(cert_pem(ca.cert))
    key = tmp_path / "ca.key"
    key.write_bytes(serialize_private_key(ca.key))
    key.chmod(0o600)
    return tmp_path


@pytest.fixture
def jig() -> Callable[..., str]:
    """jig("native") → a jig:// URL no other test uses (a fresh run of devices)."""

    def make(kind: str = "native", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"kind": kind, **options}.items())
        return f"jig://t{secrets.token_hex(4)}?{query}"

    return make


@pytest.fixture
def station(ca_dir: Path) -> Callable[..., StationConfig]:
    """station(ports=[...], **settings) → a checked StationConfig using the test CA."""

    def make(ports: list[str], **settings: Any) -> StationConfig:
        data: dict[str, Any] = {
            "station": "st-1",
            "registry": "registry.sqlite",
            "dialect": "native",
            "ports": ports,
            "device_timeout": 1.0,
            "retries": 2,
            "poll_interval": 0.05,
            "ca": {"cert": "ca.crt", "key": "ca.key"},
            "sec_tags": [{"sec_tag": 42, "client": True}],
        }
        data.update(settings)
        return config_from_dict(data, ca_dir)

    return make
