"""The simulated ESP32 bootloader: Espressif's esptool CLI, unchanged, against it over TCP."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.bundle import esp_partitions as ptab
from provision.bundle import esp_secure_cert as esc
from provision.sim import esp32 as sim
from provision.sim.serve import build_runner
from provision.transport.esp_loader_frames import request_frame

pytest.importorskip("esptool")

IMAGE = esc.encode([esc.Entry(esc.TlvType.DEV_CERT, 0, b"\x30\x82" + bytes(range(256)) * 6)])


class Server:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provision", "sim", "--dialect", "esp32", "--tcp", "0",
             "--json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.port = json.loads(self.proc.stdout.readline())["port"]

    def esptool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "esptool", "--port", self.port, *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if check:
            assert r.returncode == 0, r.stdout + r.stderr
        return r

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def server() -> Iterator[type[Server]]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        s = Server(*args)
        started.append(s)
        return s

    yield start  # type: ignore[misc]
    for s in started:
        s.stop()


def test_esptool_writes_and_reads_back_with_stub_and_rom_and_flash_persists(
    server, tmp_path
) -> None:
    image = tmp_path / "image.bin"
    image.write_bytes(IMAGE)
    flash = tmp_path / "dev.flash"
    # --baud 0: no line pacing (the 460800 test below keeps it).
    s = server("--flash", str(flash), "--uid", "24:0a:c4:00:00:2a", "--baud", "0")
    out = s.esptool("chip-id").stdout
    assert "Detecting chip type... ESP32" in out
    assert "24:0a:c4:00:00:2a" in out
    out = s.esptool("write-flash", "0xD000", str(image)).stdout
    assert "Stub flasher running" in out and "Hash of data verified" in out
    s.stop()
    # A new server over the same flash file: the ROM loader (no stub) reads it back.
    s = server("--flash", str(flash), "--baud", "0")
    s.esptool("--no-stub", "read-flash", "0xD000", str(len(IMAGE)), str(tmp_path / "rom.bin"))
    assert (tmp_path / "rom.bin").read_bytes() == IMAGE
    s.esptool("read-flash", "0xD000", "0x2000", str(tmp_path / "stub.bin"))
    part = (tmp_path / "stub.bin").read_bytes()
    assert part == IMAGE + b"\xff" * (0x2000 - len(IMAGE))
    assert esc.decode(part).entries[0].type == esc.TlvType.DEV_CERT


def test_esptool_detects_s3_by_chip_id_and_flashes_through_the_rom_at_460800(
    server, tmp_path
) -> None:
    image = tmp_path / "image.bin"
    image.write_bytes(IMAGE)
    s = server("--chip", "esp32s3")
    out = s.esptool("--baud", "460800", "--no-stub", "write-flash", "0xD000", str(image)).stdout
    assert "Connected to ESP32-S3" in out and "Hash of data verified" in out
    s.esptool("--baud", "460800", "read-flash", "0xD000", str(len(IMAGE)), str(tmp_path / "rb"))
    assert (tmp_path / "rb").read_bytes() == IMAGE


def test_c3_rom_has_no_slow_read_but_its_stub_reads(server, tmp_path) -> None:
    s = server("--chip", "esp32c3", "--baud", "0")
    r = s.esptool("--no-stub", "read-flash", "0x8000", "0x20", str(tmp_path / "x"), check=False)
    assert r.returncode != 0 and "0105" in r.stdout + r.stderr
    s.esptool("read-flash", "0x8000", "0xC00", str(tmp_path / "table.bin"))
    table = ptab.decode((tmp_path / "table.bin").read_bytes())
    secure = ptab.find(table, "esp_secure_cert")
    assert secure is not None and (secure.offset, secure.size) == (0xD000, 0x2000)


# --- the sans-IO device, in process -------------------------------------------------------


def _request(op: int, data: bytes = b"", chk: int = 0) -> bytes:
    return request_frame(op, data, chk)


def _responses(raw: bytes) -> list[bytes]:
    return [sim._unslip(p) for p in raw.split(b"\xc0") if p]


def _device(**options: str):
    runner = build_runner("esp32", {"baud": "0", **options})
    return runner, runner.device


def test_rom_answers_sync_eight_times_and_refuses_unknown_commands() -> None:
    _, dev = _device()
    replies = _responses(dev.receive_data(_request(sim.SYNC, sim.SYNC_DATA)))
    assert len(replies) == 8
    assert all(struct.unpack_from("<I", r, 4)[0] != 0 for r in replies)
    (bad,) = _responses(dev.receive_data(_request(0x55)))
    assert bad[8:10] == bytes([1, sim.ROM_INVALID])


def test_bad_block_checksum_is_refused_and_nothing_is_written() -> None:
    _, dev = _device()
    dev.receive_data(_request(sim.FLASH_BEGIN, struct.pack("<IIII", 0x400, 1, 0x400, 0xD000)))
    block = b"\x11" * 0x400
    (r,) = _responses(
        dev.receive_data(
            _request(sim.FLASH_DATA, struct.pack("<IIII", 0x400, 0, 0, 0) + block, 0x00)
        )
    )
    assert r[8:10] == bytes([1, sim.ROM_BAD_CHECKSUM])
    assert dev.flash.read(0xD000, 4) == b"\xff" * 4


def test_a_paced_frame_reaches_the_device_whole_once_its_last_byte_has_arrived() -> None:
    # SLIP headers are full of zeros (which end a native frame): the runner cuts esp32 input
    # at 0xC0 only, and answers reach the host as whole frames too.
    runner = build_runner("esp32", {"baud": "115200"})
    seen: list[bytes] = []
    receive = runner.device.receive_data
    runner.device.receive_data = lambda data: seen.append(data) or receive(data)  # type: ignore[method-assign]
    runner.advance(1.0)  # the boot banner
    frame = _request(sim.READ_REG, struct.pack("<I", sim.CHIP_DETECT_MAGIC_REG))
    assert frame.count(0) > 1
    runner.host_write(frame, 1.0)
    end = 1.0 + len(frame) * runner.byte_time
    assert runner.advance(end - runner.byte_time / 2) == b"" and seen == []
    runner.advance(end)
    assert seen == [frame]
    reply_at = runner.next_event_time(whole_units=True)
    assert reply_at is not None
    (reply,) = _responses(runner.advance(reply_at))
    assert struct.unpack_from("<I", reply, 4)[0] == sim.CHIPS["esp32"].magic


def test_change_baudrate_retimes_the_line() -> None:
    runner = build_runner("esp32", {"baud": "115200"})
    runner.host_write(_request(sim.CHANGE_BAUDRATE, struct.pack("<II", 921600, 0)), 0.0)
    runner.advance(1.0)
    assert runner.byte_time == pytest.approx(10 / 921600)


def test_mac_and_chip_are_options_and_bad_ones_are_one_line_errors() -> None:
    from provision.errors import InputError

    _, dev = _device(chip="esp32c3", mac="24:0a:c4:01:02:03")
    assert dev.regs[0x60008844] == 0xC4010203 and dev.regs[0x60008848] == 0x240A
    with pytest.raises(InputError, match="use one of esp32, esp32c3, esp32s3"):
        _device(chip="esp8266")
    with pytest.raises(InputError, match="six hex bytes"):
        _device(mac="zz")


def test_fresh_flash_holds_espressifs_partition_table(tmp_path: Path) -> None:
    _, dev = _device()
    table = ptab.decode(dev.flash.read(ptab.TABLE_OFFSET, ptab.TABLE_MAX))
    assert [p.label for p in table] == ["nvs", "esp_secure_cert", "phy_init", "factory"]
    assert ptab.find(table, "esp_secure_cert").encrypted  # type: ignore[union-attr]
