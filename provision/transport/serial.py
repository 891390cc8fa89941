"""Serial ports and every pyserial URL (socket://, rfc2217://, loop://, spy://…).

The only module that imports pyserial. Errors become LinkError (the port failed while in use)
or InputError (the port cannot be opened: wrong name, busy, no permission).
"""

from __future__ import annotations

import contextlib
import time

import serial
import serial.tools.list_ports

from provision.errors import InputError, LinkError

DEFAULT_BAUD = 115200


class SerialTransport:
    def __init__(self, port: serial.SerialBase, url: str) -> None:
        self.port = port
        self.url = url

    @property
    def baudrate(self) -> int | None:
        # A socket:// or loop:// URL has no line rate worth timing by.
        return None if "://" in self.url else self.port.baudrate

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as err:
            raise LinkError(f"{self.url}: write failed: {err}") from None

    def read(self, max_bytes: int, timeout: float) -> bytes:
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            while True:
                waiting = self.port.in_waiting
                if waiting:
                    return self.port.read(min(max_bytes, waiting))
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self.port.timeout = min(left, 0.05)
                first = self.port.read(1)
                if first:
                    more = self.port.in_waiting
                    if more and max_bytes > 1:
                        first += self.port.read(min(max_bytes - 1, more))
                    return first
        except (serial.SerialException, OSError) as err:
            raise LinkError(f"{self.url}: read failed: {err}") from None

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.close()


def open_serial(url: str, baud: int | None = None) -> SerialTransport:
    """Open a device path (/dev/ttyUSB0, COM3) or any pyserial URL."""
    try:
        port = serial.serial_for_url(url, baudrate=baud or DEFAULT_BAUD, timeout=0.05)
    except serial.SerialException as err:
        text = str(err).split("\n")[0]
        raise InputError(f"{url}: cannot open port: {text}") from None
    except ValueError as err:
        raise InputError(f"{url}: bad port or URL: {err}") from None
    return SerialTransport(port, url)


def list_ports() -> list[dict[str, str]]:
    """Serial ports the OS knows, for `provision device ports`."""
    out = []
    for p in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device):
        out.append(
            {
                "port": p.device,
                "description": p.description or "",
                "hwid": p.hwid or "",
            }
        )
    return out
