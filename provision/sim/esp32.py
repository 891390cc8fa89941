"""A simulated ESP32 serial bootloader: the ROM loader and, once uploaded, esptool's flasher stub.

Facts from esptool 5 (esptool/loader.py, esptool/targets/esp32*.py, docs "Serial Protocol"):

- SLIP framing (0xC0 ends a packet; 0xDB 0xDC / 0xDB 0xDD escape 0xC0 / 0xDB). A request is
  direction 0x00, command, size u16, checksum u32, data; a response is direction 0x01, the
  command, size u16, value u32, data. The data ends in status bytes: status, error, and (ROM
  loaders of the ESP32 family only) two reserved bytes; the stub sends two. Errors: 0x05 invalid
  message (unknown command), 0x07 bad checksum; the stub uses 0xC1 bad checksum, 0xC3 invalid
  command, 0xC6 not in flash mode.
- The checksum of data blocks is the XOR of the bytes, seeded with 0xEF.
- SYNC (07 07 12 20 + 32 x 0x55) is answered eight times; the ROM with a non-zero value, the
  stub with 0 (which is how esptool notices a stub already running).
- Chip detection: classic ESP32 by the word at 0x40001000 (0x00F01D83); ESP32-C3/S3 by the
  chip id in GET_SECURITY_INFO (5 / 9), which the classic ESP32 does not know.
- The MAC is in eFuse words (ESP32: EFUSE_RD 0x3FF5A000 words 1, 2; C3/S3: 0x60008844 /
  0x60007044). esptool reads the flash id and SFDP through the SPI peripheral's USR command
  registers (READ_REG / WRITE_REG).
- The flasher stub is uploaded with MEM_BEGIN / MEM_DATA / MEM_END(entry); it greets with the
  SLIP packet "OHAI". It writes 0x4000-byte blocks, compressed (FLASH_DEFL_*, which the
  ROMs of the ESP32 family take too, in 0x400-byte blocks), hashes with
  SPI_FLASH_MD5 (16 raw bytes; the ROM sends 32 hex characters), streams READ_FLASH in
  sector-sized packets the host acknowledges (total so far, u32), ending with the MD5.
  The ROM of the classic ESP32 reads flash 64 bytes at a time (READ_FLASH_SLOW).

We do not execute uploaded code: any MEM_END with an entry point starts "the stub". A FLASH_END
or FLASH_DEFL_END asking to reboot, and RUN_USER_CODE, restart the ROM loader (as if the boot
strapping pin stayed low). A fresh flash gets Espressif's esp_secure_cert partition table.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

from provision.bundle import esp_partitions as ptab
from provision.bundle import esp_secure_cert as esc
from provision.errors import InputError
from provision.sim.serve import SimContext
from provision.transport.esp_loader_frames import RESPONSE, checksum, packet, slip

SECTOR = 0x1000
FLASH_SIZE = 4 * 1024 * 1024
FLASH_ID = 0x1640EF  # Winbond W25Q32: manufacturer 0xEF, 4 MB (0x16)
SFDP_SIGNATURE = 0x50444653
SYNC_DATA = b"\x07\x07\x12\x20" + b"\x55" * 32
OHAI = b"OHAI"

# Commands (esptool ESPLoader.ESP_CMDS).
FLASH_BEGIN, FLASH_DATA, FLASH_END = 0x02, 0x03, 0x04
MEM_BEGIN, MEM_END, MEM_DATA = 0x05, 0x06, 0x07
SYNC, WRITE_REG, READ_REG = 0x08, 0x09, 0x0A
SPI_SET_PARAMS, SPI_ATTACH, READ_FLASH_SLOW, CHANGE_BAUDRATE = 0x0B, 0x0D, 0x0E, 0x0F
FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END = 0x10, 0x11, 0x12
SPI_FLASH_MD5, GET_SECURITY_INFO = 0x13, 0x14
ERASE_FLASH, ERASE_REGION, READ_FLASH, RUN_USER_CODE = 0xD0, 0xD1, 0xD2, 0xD3

ROM_INVALID, ROM_BAD_CHECKSUM, ROM_FAILED = 0x05, 0x07, 0x06
STUB_BAD_CHECKSUM, STUB_INVALID, STUB_NOT_IN_FLASH_MODE = 0xC1, 0xC3, 0xC6
STUB_BAD_LEN, STUB_INFLATE = 0xC0, 0xC7


@dataclass(frozen=True)
class Chip:
    name: str
    magic: int  # word at 0x40001000
    chip_id: int | None  # GET_SECURITY_INFO chip id; None: the ROM lacks the command
    spi_base: int
    spi_w0: int  # offset of the W0 data register
    efuse_mac: tuple[int, int]  # (address of mac[2..5] word, address of mac[0..1] word)
    uart_clkdiv: int
    rom_read_flash: bool  # ROM loader answers READ_FLASH_SLOW
    extra_regs: tuple[tuple[int, int], ...] = ()


CHIPS: dict[str, Chip] = {
    "esp32": Chip(
        "ESP32",
        magic=0x00F01D83,
        chip_id=None,
        spi_base=0x3FF42000,
        spi_w0=0x80,
        efuse_mac=(0x3FF5A004, 0x3FF5A008),
        uart_clkdiv=0x3FF40014,
        rom_read_flash=True,
        extra_regs=(
            # EFUSE_RD word 3: package D0WD, revision bits; word 5 and APB_CTL_DATE: v3.0.
            (0x3FF5A00C, (1 << 9) | (1 << 15)),
            (0x3FF5A014, 1 << 20),
            (0x3FF6607C, 1 << 31),
            # ROM-calibrated 8 MHz clock (EFUSE word 4) and RTC calibration: 40 MHz crystal.
            (0x3FF5A010, 80),
            (0x3FF5F06C, 1280 << 7),
        ),
    ),
    "esp32c3": Chip(
        "ESP32-C3",
        magic=0x1B31506F,
        chip_id=5,
        spi_base=0x60002000,
        spi_w0=0x58,
        efuse_mac=(0x60008844, 0x60008848),
        uart_clkdiv=0x60000014,
        rom_read_flash=False,
    ),
    "esp32s3": Chip(
        "ESP32-S3",
        magic=0x00000009,
        chip_id=9,
        spi_base=0x60002000,
        spi_w0=0x58,
        efuse_mac=(0x60007044, 0x60007048),
        uart_clkdiv=0x60000014,
        rom_read_flash=True,
    ),
}
CHIP_DETECT_MAGIC_REG = 0x40001000

# Espressif's partitions.csv for esp_secure_cert (esp_secure_cert_mgr docs/format.md), with the
# usual nvs / phy_init / factory app around it.
DEFAULT_TABLE = [
    ptab.Partition("nvs", 0x01, 0x02, 0x9000, 0x4000),
    ptab.Partition(
        esc.PARTITION_LABEL,
        esc.PARTITION_TYPE,
        0x00,
        esc.DEFAULT_OFFSET,
        esc.DEFAULT_SIZE,
        ptab.FLAG_ENCRYPTED,
    ),
    ptab.Partition("phy_init", 0x01, 0x01, 0xF000, 0x1000),
    ptab.Partition("factory", 0x00, 0x00, 0x10000, 0x100000),
]


def _mac(ctx: SimContext) -> bytes:
    text = ctx.options.get("mac") or ctx.options.get("uid")
    if text:
        try:
            mac = bytes.fromhex(text.replace(":", "").replace("-", ""))
        except ValueError:
            mac = b""
        if len(mac) != 6:
            raise InputError(f"sim mac {text!r}: give six hex bytes, e.g. 24:0a:c4:12:34:56")
        return mac
    # Espressif's OUI and three bytes from the seed: jigs differ, reruns agree.
    return bytes([0x24, 0x0A, 0xC4]) + hashlib.sha256(b"%d" % ctx.seed).digest()[:3]


class Esp32Loader:
    """The sans-IO device: bytes in, bytes out; flash through ctx.store.flash."""

    FRAME_END = b"\xc0"  # the runner hands over whole SLIP frames (their headers hold zeros)

    def __init__(self, ctx: SimContext) -> None:
        name = ctx.options.get("chip", "esp32")
        if name not in CHIPS:
            raise InputError(f"sim chip {name!r}: use one of {', '.join(CHIPS)}")
        self.chip = CHIPS[name]
        self.flash = ctx.store.flash
        if self.flash.size < FLASH_SIZE:
            raise InputError(f"the esp32 simulator needs {FLASH_SIZE} bytes of flash")
        self.profile = ctx.profile
        self.mac = _mac(ctx)
        self.baud = 115200
        self.baud_request: int | None = None  # read by the runner after a CHANGE_BAUDRATE
        self._rx = bytearray()
        self._in_frame = False
        self._work = 0.0
        self.stub = False
        self.regs: dict[int, int] = dict(self.chip.extra_regs)
        self.regs[CHIP_DETECT_MAGIC_REG] = self.chip.magic
        lo, hi = self.chip.efuse_mac
        self.regs[lo] = int.from_bytes(self.mac[2:6], "big")
        self.regs[hi] = int.from_bytes(self.mac[0:2], "big")
        # Writes in progress.
        self._write: dict[str, int] | None = None
        self._inflate: zlib._Decompress | None = None
        self._mem: dict[str, int] | None = None
        self._reading: dict[str, int] | None = None
        if self.flash.read(ptab.TABLE_OFFSET, 2) == b"\xff\xff":
            self.flash.program(ptab.TABLE_OFFSET, ptab.encode(DEFAULT_TABLE))
            self.flash.take_busy()

    # -- the sim interface
    def boot(self) -> bytes:
        return (
            b"ets Jul 29 2019 12:21:46\r\n\r\n"
            b"rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
            b"waiting for download\r\n"
        )

    def take_work_time(self) -> float:
        work, self._work = self._work + self.flash.take_busy(), 0.0
        return work

    def receive_data(self, data: bytes) -> bytes:
        out = bytearray()
        pos = 0
        while True:
            end = data.find(0xC0, pos)
            if end < 0:
                if self._in_frame:
                    self._rx += data[pos:]
                return bytes(out)
            # A 0xC0 ends a packet (if one was open and not empty) and starts the next.
            if self._in_frame:
                self._rx += data[pos:end]
                if self._rx:
                    out += self._packet(_unslip(bytes(self._rx)))
                    self._rx.clear()
            self._in_frame = True
            pos = end + 1

    # -- packets
    def _packet(self, p: bytes) -> bytes:
        self._work += self.profile.frame_us / 1e6
        if self._reading is not None and len(p) == 4:
            return self._read_ack(int.from_bytes(p, "little"))
        if len(p) < 8 or p[0] != 0x00:
            return b""  # noise: the ROM ignores what is not a request
        op, size, chk = struct.unpack_from("<xBHI", p)
        data = p[8 : 8 + size]
        if len(data) != size:
            return self._fail(op, ROM_INVALID if not self.stub else STUB_BAD_LEN)
        handler = getattr(self, f"_op_{op:02x}", None)
        if handler is None:
            return self._fail(op, STUB_INVALID if self.stub else ROM_INVALID)
        return handler(op, data, chk)

    def _reply(self, op: int, value: int = 0, data: bytes = b"") -> bytes:
        status = b"\x00\x00" if self.stub else b"\x00\x00\x00\x00"
        body = data + status
        return slip(packet(RESPONSE, op, body, value))

    def _fail(self, op: int, error: int) -> bytes:
        status = bytes([1, error]) + (b"" if self.stub else b"\x00\x00")
        return slip(packet(RESPONSE, op, status))

    # SYNC
    def _op_08(self, op: int, data: bytes, chk: int) -> bytes:
        if data != SYNC_DATA:
            return b""
        value = 0 if self.stub else 0x20120707
        return self._reply(op, value) * 8

    # READ_REG / WRITE_REG
    def _op_0a(self, op: int, data: bytes, chk: int) -> bytes:
        if len(data) != 4:
            return self._fail(op, ROM_INVALID)
        (addr,) = struct.unpack("<I", data)
        return self._reply(op, self._read_reg(addr))

    def _op_09(self, op: int, data: bytes, chk: int) -> bytes:
        if len(data) % 16:
            return self._fail(op, ROM_INVALID)
        for i in range(0, len(data), 16):
            addr, value, mask, _delay = struct.unpack_from("<IIII", data, i)
            old = self.regs.get(addr, 0)
            self.regs[addr] = (old & ~mask) | (value & mask)
            if addr == self.chip.spi_base and self.regs[addr] & (1 << 18):
                self._spi_user_command()
        return self._reply(op)

    def _read_reg(self, addr: int) -> int:
        if addr == self.chip.uart_clkdiv:
            return round(40_000_000 / self.baud) & 0xFFFFF  # UART clocked by the 40 MHz xtal
        return self.regs.get(addr, 0)

    def _spi_user_command(self) -> None:
        """The SPI peripheral's USR command: esptool reads the flash id (RDID) and SFDP."""
        base = self.chip.spi_base
        usr2 = self.regs.get(base + (0x24 if self.chip.name == "ESP32" else 0x20), 0)
        command = usr2 & 0xFF
        w0 = base + self.chip.spi_w0
        if command == 0x9F:
            self.regs[w0] = FLASH_ID
        elif command == 0x5A:
            self.regs[w0] = SFDP_SIGNATURE
        else:  # status registers and the rest read as 0
            self.regs[w0] = 0
        self.regs[base] = 0  # done

    # SPI_SET_PARAMS / SPI_ATTACH
    def _op_0b(self, op: int, data: bytes, chk: int) -> bytes:
        return self._reply(op) if len(data) == 24 else self._fail(op, ROM_INVALID)

    def _op_0d(self, op: int, data: bytes, chk: int) -> bytes:
        return self._reply(op) if len(data) in (4, 8) else self._fail(op, ROM_INVALID)

    # GET_SECURITY_INFO
    def _op_14(self, op: int, data: bytes, chk: int) -> bytes:
        if self.chip.chip_id is None:
            return self._fail(op, STUB_INVALID if self.stub else ROM_INVALID)
        info = struct.pack("<IB7BII", 0, 0, *([0] * 7), self.chip.chip_id, 0)
        return self._reply(op, 0, info)

    # CHANGE_BAUDRATE: answered at the old rate, then the line runs at the new one.
    def _op_0f(self, op: int, data: bytes, chk: int) -> bytes:
        if len(data) != 8:
            return self._fail(op, ROM_INVALID)
        baud, _old = struct.unpack("<II", data)
        if not 300 <= baud <= 5_000_000:
            return self._fail(op, ROM_FAILED)
        self.baud = baud
        self.baud_request = baud
        return self._reply(op)

    # MEM_BEGIN / MEM_DATA / MEM_END: the stub upload.
    def _op_05(self, op: int, data: bytes, chk: int) -> bytes:
        if len(data) != 16:
            return self._fail(op, ROM_INVALID)
        size, blocks, _blocksize, _address = struct.unpack("<IIII", data)
        self._mem = {"size": size, "blocks": blocks, "seq": 0, "got": 0}
        return self._reply(op)

    def _op_07(self, op: int, data: bytes, chk: int) -> bytes:
        if self._mem is None or len(data) < 16:
            return self._fail(op, ROM_INVALID)
        n, seq = struct.unpack_from("<II", data)
        block = data[16:]
        if len(block) != n or checksum(block) != chk:
            return self._fail(op, STUB_BAD_CHECKSUM if self.stub else ROM_BAD_CHECKSUM)
        if seq != self._mem["seq"]:
            return self._fail(op, ROM_FAILED)
        self._mem["seq"] += 1
        self._mem["got"] += n
        return self._reply(op)

    def _op_06(self, op: int, data: bytes, chk: int) -> bytes:
        if len(data) != 8:
            return self._fail(op, ROM_INVALID)
        no_entry, entry = struct.unpack("<II", data)
        complete = self._mem is not None and self._mem["got"] >= self._mem["size"]
        self._mem = None
        out = self._reply(op)
        if not no_entry and entry and complete:
            self.stub = True
            out += slip(OHAI)
        return out

    # FLASH_BEGIN / FLASH_DATA / FLASH_END
    def _begin(self, op: int, data: bytes, compressed: bool) -> bytes:
        want = 16 if (self.chip.name == "ESP32" and not self.stub) else 20
        if len(data) != want:
            return self._fail(op, STUB_BAD_LEN if self.stub else ROM_INVALID)
        size, _blocks, _blocksize, offset = struct.unpack_from("<IIII", data)
        if offset % SECTOR or offset + size > self.flash.size:
            return self._fail(op, ROM_FAILED)
        # The ROM erases up front; the stub erases ahead of its writes. Same bytes, either way.
        end = min(self.flash.size, -(-(offset + size) // SECTOR) * SECTOR)
        for sector in range(offset, end, SECTOR):
            self.flash.erase(sector, SECTOR)
        self._write = {"offset": offset, "pos": offset, "seq": 0, "size": size, "end": end}
        self._inflate = zlib.decompressobj() if compressed else None
        return self._reply(op)

    def _block(self, op: int, data: bytes, chk: int, compressed: bool) -> bytes:
        bad_len = STUB_BAD_LEN if self.stub else ROM_INVALID
        if self._write is None or (self._inflate is None) == compressed:
            return self._fail(op, STUB_NOT_IN_FLASH_MODE if self.stub else ROM_FAILED)
        if len(data) < 16:
            return self._fail(op, bad_len)
        n, seq = struct.unpack_from("<II", data)
        block = data[16:]
        if len(block) != n:
            return self._fail(op, bad_len)
        if checksum(block) != chk:
            return self._fail(op, STUB_BAD_CHECKSUM if self.stub else ROM_BAD_CHECKSUM)
        if seq != self._write["seq"]:
            # A retried block the device already has: the ROM and stub answer OK again.
            return self._reply(op) if seq == self._write["seq"] - 1 else self._fail(op, ROM_FAILED)
        if self._inflate is not None:
            try:
                block = self._inflate.decompress(block)
            except zlib.error:
                return self._fail(op, STUB_INFLATE)
        pos = self._write["pos"]
        block = block[: max(0, self._write["end"] - pos)]
        self.flash.program(pos, block)
        self._write["pos"] = pos + len(block)
        self._write["seq"] += 1
        return self._reply(op)

    def _finish(self, op: int, data: bytes) -> bytes:
        self._write = None
        self._inflate = None
        stay = len(data) >= 4 and struct.unpack_from("<I", data)[0] != 0
        out = self._reply(op)
        if not stay:
            self._reboot()
        return out

    def _op_02(self, op: int, data: bytes, chk: int) -> bytes:
        return self._begin(op, data, compressed=False)

    def _op_03(self, op: int, data: bytes, chk: int) -> bytes:
        return self._block(op, data, chk, compressed=False)

    def _op_04(self, op: int, data: bytes, chk: int) -> bytes:
        return self._finish(op, data)

    def _op_10(self, op: int, data: bytes, chk: int) -> bytes:
        return self._begin(op, data, compressed=True)

    def _op_11(self, op: int, data: bytes, chk: int) -> bytes:
        return self._block(op, data, chk, compressed=True)

    def _op_12(self, op: int, data: bytes, chk: int) -> bytes:
        return self._finish(op, data)

    def _reboot(self) -> None:
        self.stub = False
        self._reading = None

    # SPI_FLASH_MD5
    def _op_13(self, op: int, data: bytes, chk: int) -> bytes:
        if len(data) != 16:
            return self._fail(op, ROM_INVALID)
        addr, size = struct.unpack_from("<II", data)
        if addr + size > self.flash.size:
            return self._fail(op, ROM_FAILED)
        digest = hashlib.md5(self.flash.read(addr, size)).digest()
        self._work += size * 0.05e-6  # the ROM hashes at some 20 MB/s
        return self._reply(op, 0, digest if self.stub else digest.hex().encode())

    # READ_FLASH_SLOW (ROM): 64 bytes a command.
    def _op_0e(self, op: int, data: bytes, chk: int) -> bytes:
        if self.stub or not self.chip.rom_read_flash:
            return self._fail(op, STUB_INVALID if self.stub else ROM_INVALID)
        if len(data) != 8:
            return self._fail(op, ROM_INVALID)
        addr, size = struct.unpack("<II", data)
        if size > 64 or addr + size > self.flash.size:
            return self._fail(op, ROM_FAILED)
        return self._reply(op, 0, self.flash.read(addr, size).ljust(64, b"\xff"))

    # Stub only: ERASE_FLASH, ERASE_REGION, READ_FLASH, RUN_USER_CODE.
    def _op_d0(self, op: int, data: bytes, chk: int) -> bytes:
        if not self.stub:
            return self._fail(op, ROM_INVALID)
        for sector in range(0, self.flash.size, SECTOR):
            self.flash.erase(sector, SECTOR)
        return self._reply(op)

    def _op_d1(self, op: int, data: bytes, chk: int) -> bytes:
        if not self.stub:
            return self._fail(op, ROM_INVALID)
        if len(data) != 8:
            return self._fail(op, STUB_BAD_LEN)
        addr, size = struct.unpack("<II", data)
        if addr % SECTOR or size % SECTOR or addr + size > self.flash.size:
            return self._fail(op, STUB_BAD_LEN)
        for sector in range(addr, addr + size, SECTOR):
            self.flash.erase(sector, SECTOR)
        return self._reply(op)

    def _op_d2(self, op: int, data: bytes, chk: int) -> bytes:
        if not self.stub:
            return self._fail(op, ROM_INVALID)
        if len(data) != 16:
            return self._fail(op, STUB_BAD_LEN)
        addr, size, packet, in_flight = struct.unpack("<IIII", data)
        if addr + size > self.flash.size or not packet or not in_flight:
            return self._fail(op, STUB_BAD_LEN)
        self._reading = {
            "addr": addr, "size": size, "packet": packet, "in_flight": in_flight,
            "sent": 0, "acked": 0,
        }  # fmt: skip
        return self._reply(op) + self._read_more()

    def _read_more(self) -> bytes:
        r = self._reading
        assert r is not None
        out = bytearray()
        while r["sent"] < r["size"] and r["sent"] - r["acked"] < r["in_flight"] * r["packet"]:
            n = min(r["packet"], r["size"] - r["sent"])
            out += slip(self.flash.read(r["addr"] + r["sent"], n))
            r["sent"] += n
        return bytes(out)

    def _read_ack(self, total: int) -> bytes:
        r = self._reading
        assert r is not None
        r["acked"] = max(r["acked"], min(total, r["sent"]))
        if r["acked"] >= r["size"]:
            self._reading = None
            return slip(hashlib.md5(self.flash.read(r["addr"], r["size"])).digest())
        return self._read_more()

    def _op_d3(self, op: int, data: bytes, chk: int) -> bytes:
        if not self.stub:
            return self._fail(op, ROM_INVALID)
        self._reboot()
        return b""


def _unslip(data: bytes) -> bytes:
    if 0xDB not in data:
        return data
    if data.count(0xDB) == data.count(b"\xdb\xdc") + data.count(b"\xdb\xdd"):
        # Every escape well formed: its pairs cannot overlap (neither 0xDC nor 0xDD is 0xDB).
        return data.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0xDB:
            nxt = next(it, None)
            out.append({0xDC: 0xC0, 0xDD: 0xDB}.get(nxt, nxt) if nxt is not None else b)
        else:
            out.append(b)
    return bytes(out)


def create(ctx: SimContext) -> Esp32Loader:
    return Esp32Loader(ctx)
