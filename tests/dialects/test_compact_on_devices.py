"""A set packed with the default encoding (compact: DER) on every dialect: the text dialects
turn DER back into the PEM their devices store, and the device's digests match.

The committed fixtures are PEM as OpenSSL writes it, so the PEM a text dialect rebuilds from
the DER must be the very file the user gave: the device's digest says so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import provision.device
from provision import packing as bundle_io
from provision.bundle.model import Encoding, SlotType
from provision.bundle.spec import PackSources, SecretSource, TagSources

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"


def compact_set(key: str = "device.key", password: bool = False):
    tag = TagSources(
        42,
        root_ca=(FIXTURES / "root-ca.pem",),
        client_cert=FIXTURES / "device.pem",
        client_key=FIXTURES / key,
        key_password=SecretSource(file=FIXTURES / "device-encrypted.pw") if password else None,
    )
    credentials = bundle_io.read_credentials(PackSources((tag,), device_id="dev-0001"))
    certs_and_key = [s for s in credentials if s.type is not SlotType.KEY_PASSWORD]
    assert {s.encoding for s in certs_and_key} == {Encoding.DER}
    return credentials


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# What each device keeps for a PEM file: nRF91 the PEM itself, Zephyr the PEM and the NUL
# its `bint` format adds, the native device the DER as the bundle carries it.
STORED = {
    "at-cmng": lambda pem, der: pem,
    "zephyr-shell": lambda pem, der: pem + b"\x00",
    "native": lambda pem, der: der,
}


@pytest.mark.parametrize("dialect", ["native", "at-cmng", "zephyr-shell"])
def test_compact_set_written_and_verified(dialect: str, tmp_path: Path) -> None:
    credentials = compact_set()
    url = f"sim://{dialect}?flash={tmp_path / 'dev.flash'}"
    with provision.device.open(url, dialect=dialect, timeout=1.0, retries=1) as dev:
        dev.write(credentials)
        assert dev.verify(credentials).ok
        listed = {s.type: s.sha256 for s in dev.list()}
    stored = STORED[dialect]
    for slot_type, pem, der in [
        (SlotType.ROOT_CA, "root-ca.pem", "root-ca.der"),
        (SlotType.CLIENT_CERT, "device.pem", "device.der"),
        (SlotType.CLIENT_KEY, "device.key", "device.key.der"),
    ]:
        expected = stored((FIXTURES / pem).read_bytes(), (FIXTURES / der).read_bytes())
        assert listed[slot_type] == sha(expected), slot_type


@pytest.mark.parametrize("dialect", ["native", "at-cmng"])
def test_compact_encrypted_key_reaches_the_device_unchanged(dialect: str, tmp_path) -> None:
    """The encrypted key travels as its DER; nRF91 gets the original PEM back (armour only)."""
    credentials = compact_set("device-encrypted.key", password=True)
    url = f"sim://{dialect}?flash={tmp_path / 'dev.flash'}"
    with provision.device.open(url, dialect=dialect, timeout=1.0, retries=1) as dev:
        dev.write(credentials)
        assert dev.verify(credentials).ok
        listed = {s.type: s.sha256 for s in dev.list()}
    pem = (FIXTURES / "device-encrypted.key").read_bytes()
    key = credentials.get(42, SlotType.CLIENT_KEY)
    assert key is not None
    assert listed[SlotType.CLIENT_KEY] == sha(pem if dialect == "at-cmng" else key.data)


def test_device_write_from_pem_files_sends_der_by_default(cli, tmp_path: Path) -> None:
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    items = [
        "--tag", "42", "--root-ca", str(FIXTURES / "root-ca.pem"),
        "--client-cert", str(FIXTURES / "device.pem"),
        "--client-key", str(FIXTURES / "device.key"),
    ]  # fmt: skip
    result = cli(["device", "write", *items, "--port", port, "--json"])
    assert result.exit_code == 0, result.output
    slots = {s["slot"]: s for s in json.loads(result.stdout)["slots"]}
    assert slots["client_key"]["size"] == len((FIXTURES / "device.key.der").read_bytes())
    # --encoding keep still sends the PEM as given.
    result = cli(["device", "write", *items, "--port", port, "--json", "--encoding", "keep"])
    assert result.exit_code == 0, result.output
    slots = {s["slot"]: s for s in json.loads(result.stdout)["slots"]}
    assert slots["client_key"]["size"] == len((FIXTURES / "device.key").read_bytes())
