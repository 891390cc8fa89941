"""esptool's Python API (esptool >= 5) on our Transport: the one module that imports esptool.

Who owns the port: our Transport does (provision.device.open opens and closes it). esptool
never opens one: its ESPLoader takes any object that behaves like a pyserial port, so

- on a real serial port it gets `SerialPortAdapter`: reads and writes go through the
  Transport, the modem lines, file descriptor and name are the open pyserial object's, so
  esptool's DTR/RTS reset into the bootloader works as with its own CLI. esptool sets the
  port's timeout around every command; on the pyserial object each change was a tcsetattr
  and a flock (about 200 system calls a board), on the adapter it is an attribute. A
  `close()` from esptool (it closes the port when a connect fails) leaves the Transport's
  port open for its owner;
- on anything else (sim://, where time is virtual; socket://) it gets `TransportPort`, a
  pyserial-shaped adapter over Transport.read/write, and connects without a reset (esptool
  does the same on socket://: DTR/RTS do not cross a socket).

Everything esptool-specific (chip detection, the flasher stub, compressed writes, the MD5 and
read-back commands, its exceptions) stays here; the esp32 dialect sees `EspLink`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision.errors import DeviceError, InputError, LinkError
from provision.transport.base import Transport
from provision.transport.esp_loader_frames import checksum, request_frame

try:
    import esptool
    from esptool.cmds import detect_chip
    from esptool.loader import ESPLoader, StubFlasher
    from esptool.logger import log as esptool_log
    from esptool.util import FatalError, NotImplementedInROMError, UnsupportedCommandError
except ImportError:  # pragma: no cover - the [esp] extra is not installed
    esptool = None

Progress = Callable[[int, int], None]

# esptool's SYNC request (command 0x08, 07 07 12 20 and 32 x 0x55) in SLIP, and how every
# answer to it starts (SLIP start, direction 0x01, command 0x08): for a probe without esptool.
_SYNC_DATA = b"\x07\x07\x12\x20" + b"\x55" * 32
SYNC_REPLY_START = b"\xc0\x01\x08"


def sync_packet() -> bytes:
    return request_frame(0x08, _SYNC_DATA)


def require_esptool() -> None:
    if esptool is None:
        raise InputError("the esp32 dialect needs esptool: pip install 'provision[esp]'")


class TransportPort:
    """Enough of pyserial's Serial for esptool's ESPLoader, over a Transport."""

    dtr = False  # modem lines: nothing to drive on a socket or a simulated line
    rts = False

    def __init__(self, transport: Transport, name: str, baudrate: int) -> None:
        self._transport = transport
        self._buf = bytearray()
        self.port = self.name = name
        self._baudrate = baudrate
        self.timeout: float | None = 3.0
        self.write_timeout: float | None = None

    # esptool sets the rate after CHANGE_BAUDRATE; a simulated line follows the device.
    @property
    def baudrate(self) -> int:
        return self._baudrate

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        self._baudrate = value
        if hasattr(self._transport, "baudrate"):
            with contextlib.suppress(AttributeError):
                self._transport.baudrate = value

    def _poll(self, timeout: float) -> None:
        data = self._transport.read(65536, timeout)
        if data:
            self._buf += data

    def inWaiting(self) -> int:  # pyserial names
        if not self._buf:
            self._poll(0.0)
        return len(self._buf)

    in_waiting = property(inWaiting)

    def read(self, size: int = 1) -> bytes:
        timeout = 3.0 if self.timeout is None else self.timeout
        clock = getattr(self._transport, "clock", time.monotonic)
        deadline = clock() + timeout
        while len(self._buf) < size:
            left = deadline - clock()
            if left <= 0:
                break
            self._poll(left)
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def write(self, data: bytes) -> int:
        self._transport.write(bytes(data))
        return len(data)

    def flushInput(self) -> None:
        # Until the line is quiet: esptool sleeps on the wall clock between its tries, which
        # does not move a simulated line's virtual clock, so a boot banner still arriving
        # would otherwise meet every SYNC.
        self._buf.clear()
        while self._transport.read(65536, 0.02):
            pass

    reset_input_buffer = flushInput

    def flushOutput(self) -> None:
        pass

    reset_output_buffer = flushOutput

    def flush(self) -> None:
        pass

    def setDTR(self, state: bool) -> None:
        self.dtr = state

    def setRTS(self, state: bool) -> None:
        self.rts = state

    def close(self) -> None:
        pass  # the Transport's owner closes it


class SerialPortAdapter(TransportPort):
    """TransportPort on a real serial port: the modem lines and the file descriptor (for
    esptool's reset sequences, which ioctl it) and the device name (for its USB VID/PID
    lookup) are the pyserial object's; flushing discards the OS queue at once."""

    def __init__(
        self, transport: Transport, serial_port: Any, baudrate: int, modem_lines: bool = True
    ) -> None:
        super().__init__(transport, serial_port.port, baudrate)
        self._serial = serial_port
        if not modem_lines:
            # A port without modem lines (a pseudo-terminal: a simulated jig, a socat bridge)
            # has no USB identity either. esptool looks one up by this name at every connect,
            # listing every serial port in sysfs each time (twice a connect when the port is
            # not listed; a found one is cached): with 32 jigs that listing cost the line 0.05
            # of its scaling efficiency. No name is esptool's own "cannot look up" case:
            # it returns no VID/PID at once, the answer the listing would have given.
            self.port = ""

    def fileno(self) -> int:
        return int(self._serial.fileno())

    @property
    def dtr(self) -> bool:
        return bool(self._serial.dtr)

    @dtr.setter
    def dtr(self, state: bool) -> None:
        self._serial.dtr = state

    @property
    def rts(self) -> bool:
        return bool(self._serial.rts)

    @rts.setter
    def rts(self, state: bool) -> None:
        self._serial.rts = state

    def setDTR(self, state: bool) -> None:
        self._serial.dtr = state

    def setRTS(self, state: bool) -> None:
        self._serial.rts = state

    def flushInput(self) -> None:
        self._buf.clear()
        self._serial.reset_input_buffer()

    reset_input_buffer = flushInput

    def isOpen(self) -> bool:  # esptool's reset strategies ask before each reset
        return bool(self._serial.is_open)

    def open(self) -> None:
        if not self._serial.is_open:
            self._serial.open()


# esptool's flash_defl_block tries a block this often before giving up.
_WRITE_ATTEMPTS = 3


_stubs: dict[tuple[str, str], Any] = {}


def _stub_image(esp: Any) -> Any:
    """esptool's flasher stub for the chip (its JSON, base64-decoded): the same for every
    board of a kind, so read once (run_stub takes it as an argument)."""
    key = (esp.CHIP_NAME, esp.STUB_CLASS.stub_json_name(esp))
    if key not in _stubs:
        _stubs[key] = StubFlasher(esp)
    return _stubs[key]


def _has_modem_lines(serial_port: Any) -> bool:
    """False for a port whose modem-control lines cannot be read (TIOCMGET fails with ENOTTY
    or EINVAL: a pseudo-terminal), True otherwise."""
    try:
        _ = serial_port.cts
    except OSError as err:
        return err.errno not in (errno.ENOTTY, errno.EINVAL)
    return True


@dataclass(frozen=True)
class ChipInfo:
    chip: str  # "ESP32", "ESP32-S3", ...
    description: str  # "ESP32-D0WD-V3 (revision v3.0)"
    mac: str  # "24:0a:c4:12:34:56"
    stub: bool


def _esptool_error(err: Exception, doing: str) -> Exception:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, FatalError) and ("Failed to connect" in text or "No serial data" in text):
        return LinkError(f"{doing}: {text}", code="esp32.no_answer")
    if isinstance(err, FatalError) and "Failed to" in text:
        return DeviceError(f"{doing}: {text}", code="esp32.loader_error")
    return LinkError(f"{doing}: {text}", code="esp32.link")


class EspLink:
    """A connected ESP chip (ROM loader, then esptool's flasher stub unless `stub` is False)."""

    def __init__(
        self,
        transport: Transport,
        *,
        name: str,
        baud: int | None = None,
        stub: bool = True,
        connect_attempts: int = 3,
    ) -> None:
        require_esptool()
        esptool_log.set_verbosity("silent")
        serial_port = getattr(transport, "port", None)
        real_serial = (
            serial_port is not None and "://" not in name and hasattr(serial_port, "fileno")
        )
        rate = getattr(transport, "baudrate", None) or 115200
        modem_lines = real_serial and _has_modem_lines(serial_port)
        port = (
            SerialPortAdapter(transport, serial_port, rate, modem_lines)
            if real_serial
            else TransportPort(transport, name, rate)
        )
        # Without modem lines esptool's DTR/RTS reset cannot happen (it warns and goes on):
        # its own advice for such a port is no-reset.
        mode = "default-reset" if modem_lines else "no-reset"
        try:
            esp = detect_chip(port, ESPLoader.ESP_ROM_BAUD, mode, False, connect_attempts)
            self.chip = ChipInfo(
                esp.CHIP_NAME,
                esp.get_chip_description(),
                ":".join(f"{b:02x}" for b in esp.read_mac()),
                False,
            )
            if stub:
                esp = self._run_stub(esp)
            if baud and baud != ESPLoader.ESP_ROM_BAUD:
                esp.change_baud(baud)
            esp.flash_spi_attach(0)
        except (FatalError, NotImplementedInROMError, UnsupportedCommandError) as err:
            raise _esptool_error(err, f"{name}: connecting to the ESP bootloader") from None
        self.esp = esp
        self.name = name
        self.chip = ChipInfo(self.chip.chip, self.chip.description, self.chip.mac, esp.IS_STUB)
        self.bytes_sent = 0

    # Data blocks (the stub's 6.7 KB, compressed flash writes) are framed here and only the
    # reply is left to esptool (check_command without an op reads and checks the next
    # reply, as its own sync() reads the extra SYNC replies). Why: esptool 5 builds its
    # trace lines as f-strings, so every request's hex dump (HexFormatter: 16 bytes a line,
    # each escaped for rich) is formatted twice, in command() and in write(), even with
    # tracing off -- about 0.6 us a byte, which was half of a 32-jig line's CPU and held
    # the GIL every other port waits on. The bytes on the wire are the same.
    @staticmethod
    def _data_block(
        esp: Any, doing: str, op: int, block: bytes, seq: int, attempts: int = 1
    ) -> None:
        frame = request_frame(op, struct.pack("<IIII", len(block), seq, 0, 0) + block,
                              checksum(block))  # fmt: skip
        for left in range(attempts - 1, -1, -1):
            esp._port.write(frame)
            try:
                esp.check_command(doing)
                return
            except FatalError:
                if not left:  # else sent again at once, as esptool's flash_defl_block does
                    raise

    def _run_stub(self, esp: Any) -> Any:
        """esptool's run_stub, its RAM blocks sent by _data_block: upload the stub's
        segments (MEM_BEGIN, MEM_DATA...), start it (MEM_END), wait for its "OHAI"."""
        stub = _stub_image(esp)
        if (
            esp.sync_stub_detected
            or getattr(stub, "plugin_segments", None)
            or (esp.CHIP_NAME == "ESP32-S3" and esp.get_secure_boot_enabled())
        ):
            return esp.run_stub(stub)  # the cases esptool handles specially: as it does
        block_size = esp.ESP_RAM_BLOCK
        for segment, start in ((stub.text, stub.text_start), (stub.data, stub.data_start)):
            if segment is None:
                continue
            blocks = -(-len(segment) // block_size)
            esp.mem_begin(len(segment), blocks, block_size, start)
            for seq in range(blocks):
                block = bytes(segment[seq * block_size : (seq + 1) * block_size])
                self._data_block(esp, "write to target RAM", esp.ESP_CMDS["MEM_DATA"], block, seq)
        esp.mem_finish(stub.entry)
        greeting = esp.read()
        if greeting != b"OHAI":
            raise FatalError(f"Failed to start stub flasher. Unexpected response: {greeting!r}")
        return esp.STUB_CLASS(esp) if esp.STUB_CLASS is not None else esp

    def read_flash(self, offset: int, size: int) -> bytes:
        try:
            return bytes(self.esp.read_flash(offset, size))
        except (FatalError, NotImplementedInROMError, UnsupportedCommandError) as err:
            raise _esptool_error(err, f"{self.name}: reading flash at 0x{offset:x}") from None

    def md5(self, offset: int, size: int) -> bytes:
        try:
            return bytes.fromhex(self.esp.flash_md5sum(offset, size))
        except (FatalError, NotImplementedInROMError, UnsupportedCommandError) as err:
            raise _esptool_error(err, f"{self.name}: MD5 of flash at 0x{offset:x}") from None

    def write_flash(self, offset: int, data: bytes, progress: Progress | None = None) -> None:
        """Erase and write `data` at `offset` (sector-aligned), compressed as esptool does,
        then compare the device's MD5 of the region with ours (DeviceError if it differs)."""
        esp = self.esp
        packed = zlib.compress(data, 9)
        try:
            blocks = esp.flash_defl_begin(len(data), len(packed), offset)
            size = esp.FLASH_WRITE_SIZE
            for seq in range(blocks):
                block = packed[seq * size : (seq + 1) * size]
                self._data_block(
                    esp, f"write compressed data to flash after seq {seq}",
                    esp.ESP_CMDS["FLASH_DEFL_DATA"], block, seq, attempts=_WRITE_ATTEMPTS,
                )  # fmt: skip
                self.bytes_sent += len(block) + 16
                if progress is not None:
                    progress(min(len(data), (seq + 1) * len(data) // blocks), len(data))
            if esp.IS_STUB:
                # Leave compressed-write mode without rebooting: the stub flushes its writes.
                esp.flash_defl_finish(False)
        except (FatalError, NotImplementedInROMError, UnsupportedCommandError) as err:
            raise _esptool_error(err, f"{self.name}: writing flash at 0x{offset:x}") from None
        if self.md5(offset, len(data)) != hashlib.md5(data).digest():
            raise DeviceError(
                f"{self.name}: flash at 0x{offset:x} does not hold what was written "
                "(MD5 differs); write again",
                code="esp32.verify_failed",
            )

    def close(self) -> None:
        """Leave the chip in its loader: a reset here would start the application (on a real
        board) while a jig may still want the port."""
