"""The esp32 dialect: esptool's Python API against the simulated bootloader (virtual clock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import provision.device as device
from provision.bundle import esp_secure_cert as esc
from provision.bundle.model import SlotType
from provision.bundle.spec import PackSources, TagSources
from provision.errors import LinkError, PolicyError
from provision.packing import read_credentials

pytest.importorskip("esptool")

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"


def _set(tag: int = 42, **extra: object):
    sources = {
        "root_ca": (FIXTURES / "root-ca.pem", FIXTURES / "other-root.pem"),
        "client_cert": FIXTURES / "device.pem",
        "client_key": FIXTURES / "device.key",
        **extra,
    }
    return read_credentials(
        PackSources(tags=(TagSources(sec_tag=tag, **sources),), encoding="pem")  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("chip", ["esp32", "esp32s3"])
def test_write_verify_list_and_read_back_with_mac_as_device_id(chip: str) -> None:
    creds = _set()
    url = f"sim://esp32?chip={chip}&mac=24:0a:c4:00:00:07"
    with device.open(url, dialect="esp32") as dev:
        info = dev.info()
        assert info.device_id == "24:0a:c4:00:00:07"
        assert info.details["partition_offset"] == 0xD000
        assert dev.list() == []
        result = dev.write(creds)
        assert {s.type for s in result.written} == {
            SlotType.ROOT_CA,
            SlotType.CLIENT_CERT,
            SlotType.CLIENT_KEY,
        }
        assert dev.verify(creds).ok
        listed = {s.type: s for s in dev.list()}
        assert listed[SlotType.CLIENT_KEY].sha256 is not None  # a digest, never the bytes
        assert dev.read(42, SlotType.CLIENT_CERT) == (FIXTURES / "device.pem").read_bytes()
        roots = dev.read(42, SlotType.ROOT_CA)
        assert roots.count(b"BEGIN CERTIFICATE") == 2
        with pytest.raises(Exception, match="cannot be read back"):
            dev.read(42, SlotType.CLIENT_KEY)


def test_partition_holds_the_packed_image_then_erased_flash(tmp_path: Path) -> None:
    flash = tmp_path / "dev.flash"
    creds = _set()
    with device.open(f"sim://esp32?flash={flash}&baud=0", dialect="esp32") as dev:
        dev.write(creds)
    from provision.dialects import esp32_image as esp_pack

    image = esc.encode(esp_pack.entries_for(creds))
    part = flash.read_bytes()[0xD000:0xF000]
    assert part == image + b"\xff" * (0x2000 - len(image))


def test_a_power_cut_mid_write_is_caught_by_verify_and_a_rewrite_repairs(tmp_path: Path) -> None:
    flash = tmp_path / "dev.flash"
    creds = _set()
    # The cut hits after 600 programmed bytes of the write: the partition table is already
    # on this flash, so the budget is the image's.
    with device.open(f"sim://esp32?flash={flash}&baud=0", dialect="esp32") as dev:
        dev.delete(None, None)
    with (
        pytest.raises(LinkError),
        device.open(f"sim://esp32?flash={flash}&baud=0&flash_cut=600", dialect="esp32") as dev,
    ):
        dev.write(creds)
    with device.open(
        f"sim://esp32?flash={flash}&baud=0",
        dialect="esp32",
    ) as dev:
        dev.session.sec_tag = 42
        report = dev.verify(creds)
        assert not report.ok
        assert any("client_key" in m for m in report.mismatches)
        dev.write(creds)
        assert dev.verify(creds).ok


def test_psk_and_keygen_are_refused_before_anything_is_written() -> None:
    with device.open("sim://esp32?baud=0", dialect="esp32") as dev:
        psk_set = _set(psk_identity=b"dev-1")
        with pytest.raises(PolicyError, match="psk_identity"):
            dev.write(psk_set)
        assert dev.list() == []
        with pytest.raises(PolicyError, match="no on-device key generation"):
            dev.keygen(42)


def test_delete_one_slot_keeps_the_others_and_delete_all_empties() -> None:
    creds = _set()
    with device.open("sim://esp32?baud=0", dialect="esp32") as dev:
        dev.write(creds)
        dev.delete(42, SlotType.CLIENT_KEY)
        assert {s.type for s in dev.list()} == {SlotType.ROOT_CA, SlotType.CLIENT_CERT}
        dev.delete(None, None)
        assert dev.list() == []


def test_cli_device_write_to_esp32_reports_verified_slots(cli) -> None:
    r = cli([
        "device", "write", "--port", "sim://esp32?baud=0", "--dialect", "esp32", "--json",
        "--tag", "7", "--root-ca", FIXTURES / "root-ca.pem", "--client-cert",
        FIXTURES / "device.pem", "--client-key", FIXTURES / "device.key",
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["dialect"] == "esp32" and out["verified"] is True
    assert len(out["slots"]) == 3


def test_probe_tells_an_esp_bootloader_from_another_device() -> None:
    from provision.dialects.esp32 import Esp32Session
    from provision.sim.serve import open_sim_transport

    assert Esp32Session.probe(open_sim_transport("sim://esp32"), 1.0)
    assert not Esp32Session.probe(open_sim_transport("sim://native"), 1.0)


def test_entries_past_the_first_sector_are_listed_and_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dialect reads the partition only as far as its entries go (64 bytes, 2 KB, then
    # doubling): a set bigger than a sector must still be read whole, by a new session.
    from provision.pki.authority import create_root_ca
    from provision.pki.certs import cert_pem

    roots = []
    for n in range(8):
        root = tmp_path / f"root{n}.pem"
        root.write_bytes(cert_pem(create_root_ca(f"ESP Root {n}").cert))
        roots.append(root)
    creds = _set(root_ca=tuple(roots))
    from provision.dialects import esp32_image as esp_pack

    assert len(esc.encode(esp_pack.entries_for(creds))) > 0x1000
    flash = tmp_path / "dev.flash"
    with device.open(f"sim://esp32?flash={flash}&baud=0", dialect="esp32") as dev:
        dev.write(creds)
    monkeypatch.setenv("PROVISION_ESP32_SEC_TAG", "42")  # the chip does not keep the tag
    with device.open(f"sim://esp32?flash={flash}&baud=0", dialect="esp32") as dev:
        assert dev.verify(creds).ok
        assert dev.read(42, SlotType.ROOT_CA).count(b"BEGIN CERTIFICATE") == 8


def test_a_partition_table_longer_than_the_first_read_is_read_whole(tmp_path: Path) -> None:
    # The dialect reads 512 bytes of the table first (15 entries): esp_secure_cert as the
    # 41st entry must still be found.
    from provision.bundle import esp_partitions as ptab

    table = [
        ptab.Partition(f"data{n}", 0x01, 0x81, 0x100000 + n * 0x1000, 0x1000) for n in range(40)
    ]
    table.append(ptab.Partition("esp_secure_cert", 0x3F, 0x00, 0xD000, 0x2000))
    image = bytearray(b"\xff" * (4 * 1024 * 1024))
    encoded = ptab.encode(table)
    assert len(encoded) > 0x400 and not ptab.ends_within(encoded[:0x400])
    image[ptab.TABLE_OFFSET : ptab.TABLE_OFFSET + len(encoded)] = encoded
    flash = tmp_path / "dev.flash"
    flash.write_bytes(bytes(image))
    creds = _set()
    with device.open(f"sim://esp32?flash={flash}&baud=0", dialect="esp32") as dev:
        assert dev.info().details["partition_offset"] == 0xD000
        dev.write(creds)
        assert dev.verify(creds).ok


def _counting_reads(session):  # type: ignore[no-untyped-def]
    reads: list[tuple[int, int]] = []
    read_flash = session.link.read_flash

    def counted(offset: int, size: int) -> bytes:
        reads.append((offset, size))
        return read_flash(offset, size)

    session.link.read_flash = counted
    return reads


def test_a_new_boards_erased_partition_is_confirmed_by_md5_and_a_used_one_read() -> None:
    # A new board's partition is erased: the device's MD5 of its first 64 bytes says so, with
    # nothing read; one holding entries is read from its first 64 bytes on.
    from provision.dialects.esp32 import Esp32Session
    from provision.sim.serve import open_sim_transport

    transport = open_sim_transport("sim://esp32?baud=0")
    session = Esp32Session(transport)
    reads = _counting_reads(session)
    assert session.list() == []
    assert reads == []
    session.write(_set())
    session = Esp32Session(transport)  # the same board met again: its partition is used
    reads = _counting_reads(session)
    assert len(session.list()) == 3
    assert reads[0] == (0xD000, 0x40)


def test_listing_again_asks_the_device_for_an_md5_and_reads_only_what_changed() -> None:
    # What the session has seen (read, or written and confirmed by the device's MD5) is
    # checked against the device's MD5 of the region, not read again; flash changed behind
    # the session's back is read again.
    from provision.dialects.esp32 import Esp32Session
    from provision.sim.serve import open_sim_transport

    transport = open_sim_transport("sim://esp32?baud=0")
    session = Esp32Session(transport)
    session.write(_set())
    reads = _counting_reads(session)
    assert {s.type for s in session.list()} == {
        SlotType.ROOT_CA,
        SlotType.CLIENT_CERT,
        SlotType.CLIENT_KEY,
    }
    assert session.list() == session.list()
    assert reads == []
    # A bit of the first entry's data cleared (as NOR programming does): its CRC fails, and
    # esp_secure_cert_mgr stops at the first damaged entry.
    transport.runner.ctx.store.flash.program(0xD000 + 40, b"\x00")
    assert session.list() == []
    assert reads and reads[0] == (0xD000, 0x40)


def test_a_failed_connect_on_a_serial_port_leaves_the_port_to_its_owner() -> None:
    # A pty stands in for a serial port where no chip answers (it has no modem lines: esptool
    # warns that it could not reset). esptool gives up and closes "its" port, which is the
    # Transport's adapter: the Transport's port stays open for its owner to close.
    import os
    import tty

    from provision.transport.esptool_link import EspLink
    from provision.urls import open_url

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    transport = open_url(path)
    try:
        with pytest.raises(LinkError, match="connecting to the ESP bootloader"):
            EspLink(transport, name=path, connect_attempts=1)
        assert transport.port.is_open  # type: ignore[attr-defined]
    finally:
        transport.close()
        os.close(master)
        os.close(slave)


class _CapturePort:
    """What esptool's ESPLoader writes, for comparing frames byte for byte."""

    timeout = 3.0
    baudrate = 115200
    port = name = "capture"

    def __init__(self) -> None:
        self.sent = b""

    def write(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def flushInput(self) -> None:
        pass


def test_data_blocks_we_frame_are_the_bytes_esptool_sends() -> None:
    import random
    import struct

    from esptool.loader import ESPLoader

    from provision.transport.esp_loader_frames import checksum, request_frame

    rng = random.Random(13)
    for size in (0, 1, 2, 7, 8, 9, 16, 1000, 0x1800):
        # 0xC0 and 0xDB need escaping; checksums of every length exercise the folding.
        block = bytes(rng.choice(b"\xc0\xdb\x00\x01\xff\x55") for _ in range(size))
        assert checksum(block) == ESPLoader.checksum(block), size
        payload = struct.pack("<IIII", len(block), size, 0, 0) + block
        port = _CapturePort()
        loader = ESPLoader(port)  # type: ignore[arg-type]
        loader.command(0x11, payload, ESPLoader.checksum(block), wait_response=False)
        assert request_frame(0x11, payload, checksum(block)) == port.sent, size


def test_a_pty_port_is_connected_without_a_reset_or_a_usb_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A pseudo-terminal has no modem lines and no USB identity: esptool listed every serial
    # port in sysfs twice a connect looking for one, the costliest step of a 32-jig line.
    import importlib
    import secrets

    from serial.tools import list_ports

    from provision.line.simulate import start_jigs
    from provision.transport.esptool_link import _has_modem_lines

    listings: list[int] = []

    def comports(*_: object) -> list[object]:
        listings.append(1)
        return []

    # esptool 5.3 calls pyserial's list_ports.comports(); later releases call it through
    # esp_pylib.serial_ports, which imported it under its own name.
    monkeypatch.setattr(list_ports, "comports", comports)
    try:
        serial_ports = importlib.import_module("esp_pylib.serial_ports")
    except ImportError:
        pass
    else:
        monkeypatch.setattr(serial_ports, "_comports", comports)
    jig = start_jigs(1, kind="esp32", baud=None, prefix=f"pty{secrets.token_hex(3)}-")[0]
    try:
        with device.open(jig.path, dialect="esp32") as dev:
            assert dev.info().device_id.startswith("24:0a:c4:")
            assert not _has_modem_lines(dev.session._transport.port)
    finally:
        jig.stop.set()
    assert listings == []


def test_the_last_partition_table_is_confirmed_by_md5_and_a_different_one_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provision.bundle import esp_partitions as ptab
    from provision.transport.esptool_link import EspLink

    reads: list[int] = []
    read_flash = EspLink.read_flash

    def counted(self: EspLink, offset: int, size: int) -> bytes:
        reads.append(offset)
        return read_flash(self, offset, size)

    monkeypatch.setattr(EspLink, "read_flash", counted)
    with device.open("sim://esp32?baud=0", dialect="esp32") as dev:
        assert dev.info().details["partition_offset"] == 0xD000
    reads.clear()
    with device.open("sim://esp32?baud=0", dialect="esp32") as dev:
        assert dev.info().details["partition_offset"] == 0xD000
    assert ptab.TABLE_OFFSET not in reads  # the same table: its MD5 matched
    moved = [ptab.Partition("esp_secure_cert", 0x3F, 0x00, 0x20000, 0x2000)]
    image = bytearray(b"\xff" * (4 * 1024 * 1024))
    encoded = ptab.encode(moved)
    image[ptab.TABLE_OFFSET : ptab.TABLE_OFFSET + len(encoded)] = encoded
    flash = tmp_path / "dev.flash"
    flash.write_bytes(bytes(image))
    with device.open(f"sim://esp32?flash={flash}&baud=0", dialect="esp32") as dev:
        assert dev.info().details["partition_offset"] == 0x20000
    assert ptab.TABLE_OFFSET in reads
