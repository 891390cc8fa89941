"""Serial ports and every pyserial URL (socket://, rfc2217://, loop://, spy://…).

The only module that imports pyserial. Errors become LinkError (the port failed while in use)
or InputError (the port cannot be opened: wrong name, busy, no permission).
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import time
from collections.abc import Callable
from pathlib import Path

import serial
import serial.tools.list_ports

from provision.errors import InputError, LinkError, clip
from provision.transport.reset import Step, is_serial_device
from provision.transport.reset import apply as apply_reset

DEFAULT_BAUD = 115200
# Longest single wait inside read(): read(1) returns at the first byte anyway; the cap keeps
# a blocked read short (Ctrl-C, a port that went away).
POLL = 0.05
# The smallest piece write_reporting reports (1200 baud: 16 bytes, 0.13 s).
PIECE_MIN = 16
# Waits shorter than POLL (the tail before a deadline) come from this short list, so the
# port's timeout takes few distinct values: setting pyserial's `timeout` reconfigures the
# port (tcsetattr on POSIX) every time, which was one system call per read per device.
_TAIL_STEPS = (0.02, 0.01, 0.005, 0.002, 0.001)


def _wait_for(left: float) -> float:
    """The port timeout for a wait with `left` seconds to the deadline (never past it by
    more than a millisecond)."""
    if left >= POLL:
        return POLL
    return next((step for step in _TAIL_STEPS if step <= left), _TAIL_STEPS[-1])


class SerialTransport:
    def __init__(self, port: serial.Serial, url: str) -> None:
        self.port = port
        self.url = url
        self._timeout = port.timeout
        # A POSIX device path: reads and writes go to the (non-blocking) descriptor itself.
        # pyserial's read(1) then read(in_waiting) cost six system calls, each a release and
        # retake of the GIL, where one read (data waiting) or select + read will do: a line
        # with 32 ports wakes a few dozen times per device on each. URL handlers (socket://,
        # spy://…) keep pyserial's own read and write.
        self._fd: int | None = (
            port.fd if os.name == "posix" and type(port) is serial.Serial else None
        )

    def _set_timeout(self, timeout: float) -> None:
        if timeout != self._timeout:
            self.port.timeout = timeout
            self._timeout = timeout

    @property
    def baudrate(self) -> int | None:
        # A socket:// or loop:// URL has no line rate worth timing by.
        return None if "://" in self.url else self.port.baudrate

    @baudrate.setter
    def baudrate(self, baud: int) -> None:
        """Switch the port's rate (termios); a socket:// or loop:// URL has none to switch."""
        if "://" in self.url:
            return
        try:
            self.port.baudrate = baud
        except (serial.SerialException, OSError, ValueError) as err:
            raise LinkError(f"{self.url}: cannot switch to {baud} baud: {err}") from None

    def write(self, data: bytes) -> None:
        try:
            if self._fd is None:
                self.port.write(data)
                return
            left = memoryview(data)
            while left:
                with contextlib.suppress(BlockingIOError):
                    left = left[os.write(self._fd, left) :]
                if left:  # the OS buffer is full (a slow line): wait until it takes more
                    select.select([], [self._fd], [])
        except (serial.SerialException, OSError) as err:
            raise LinkError(f"{self.url}: write failed: {err}") from None

    def write_reporting(self, data: bytes, sent: Callable[[int], None]) -> None:
        """write(), in pieces of about a tenth of a second of line time, each drained
        (tcdrain) before `sent` hears of it: the count follows the bytes on the wire, not the
        OS buffer that takes a whole line at once. A URL without a line rate goes whole."""
        baud = self.baudrate
        piece = max(PIECE_MIN, baud // 100) if baud else len(data) or 1
        try:
            for start in range(0, len(data), piece):
                self.write(data[start : start + piece])
                self.port.flush()
                sent(min(len(data), start + piece))
        except (serial.SerialException, OSError) as err:
            raise LinkError(f"{self.url}: write failed: {err}") from None

    def read(self, max_bytes: int, timeout: float) -> bytes:
        deadline = time.monotonic() + max(0.0, timeout)
        if self._fd is not None:
            return self._read_fd(self._fd, max_bytes, deadline)
        try:
            while True:
                waiting = self.port.in_waiting
                if waiting:
                    return self.port.read(min(max_bytes, waiting))
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._set_timeout(_wait_for(left))
                first = self.port.read(1)
                if first:
                    more = self.port.in_waiting
                    if more and max_bytes > 1:
                        first += self.port.read(min(max_bytes - 1, more))
                    return first
        except (serial.SerialException, OSError) as err:
            raise LinkError(f"{self.url}: read failed: {err}") from None

    def _read_fd(self, fd: int, max_bytes: int, deadline: float) -> bytes:
        """What has arrived (one read when it is there already), else wait in select()
        until something does or the deadline passes. pyserial sets VMIN = VTIME = 0, so a
        read with nothing there returns empty at once."""
        ready = False
        try:
            while True:
                with contextlib.suppress(BlockingIOError):
                    data = os.read(fd, max_bytes)
                    if data:
                        return data
                    if ready:  # readable, yet nothing: what pyserial reports too
                        raise LinkError(
                            f"{self.url}: read failed: the device reports readiness to read "
                            "but returned no data (device disconnected or multiple access "
                            "on port?)"
                        )
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                ready = bool(select.select([fd], [], [], left)[0])
                if not ready:
                    return b""
        except OSError as err:
            raise LinkError(f"{self.url}: read failed: {err}") from None

    def discard_output(self) -> None:
        """Drop what was written but has not left yet (tcflush TCOFLUSH on a tty)."""
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.reset_output_buffer()

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.close()


def _controlling_terminal_of(rdev: int) -> int | None:
    """The id of a process whose controlling terminal is the device `rdev` (Linux /proc),
    or None. A shell's terminal is one; a simulator's or a board's port is not."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session tty_nr …; comm may hold spaces and parentheses.
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 4 and int(fields[4]) == rdev:
            return int(entry.name)
    return None


# A device found to be no session's terminal is not scanned for again for a few seconds: a
# line reopens each port for every board, and the /proc scan was a tenth of its CPU per device
# with 32 ports. Keyed by inode and ctime too: a pty number given to a new session (or a
# terminal program's grantpt) is a new inode or a new ctime, and is scanned again.
_NOT_A_TERMINAL_FOR = 5.0
_not_a_terminal: dict[tuple[int, int, int], float] = {}


def _session_owner(info: os.stat_result) -> int | None:
    key = (info.st_rdev, info.st_ino, info.st_ctime_ns)
    if time.monotonic() - _not_a_terminal.get(key, -_NOT_A_TERMINAL_FOR) < _NOT_A_TERMINAL_FOR:
        return None
    owner = _controlling_terminal_of(info.st_rdev)
    if owner is None:
        _not_a_terminal[key] = time.monotonic()
    return owner


# /dev/tty (whoever opens it: their own terminal), /dev/console, /dev/tty0 (the current
# virtual console).
_CONSOLES = (
    {os.makedev(5, 0), os.makedev(5, 1), os.makedev(4, 0)} if hasattr(os, "makedev") else set()
)


def port_problem(port: str) -> str | None:
    """Why a port named by path is not a serial device to open, or None if it may be one.

    A URL (socket://, rfc2217://, sim://…) or a Windows COM name is not checked. A path must
    be a character device that is no running session's terminal: a wrong /dev/pts number once
    sent probe frames into an operator's shell."""
    if "://" in port or os.name != "posix":
        return None
    try:
        info = os.stat(port)
    except OSError as err:
        return f"cannot open port: {err.strerror}"
    if not stat.S_ISCHR(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a character device"
        return f"not a serial port ({kind})"
    if info.st_rdev in _CONSOLES:
        return "not a device port: a console or this process's own terminal"
    owner = _session_owner(info)
    if owner is not None:
        return f"not a device port: the terminal of a running session (process {owner})"
    return None


def open_serial(url: str, baud: int | None = None) -> SerialTransport:
    """Open a device path (/dev/ttyUSB0, COM3) or any pyserial URL.

    A device path is opened exclusively (flock, where the OS has it): two commands on one
    port garbled each other's frames; the second now fails at once with "port busy"."""
    problem = port_problem(url)
    if problem is not None:
        raise InputError(f"{clip(url)}: {problem}")
    exclusive = True if os.name == "posix" and "://" not in url else None
    try:
        port = serial.serial_for_url(
            url, baudrate=baud or DEFAULT_BAUD, timeout=POLL, exclusive=exclusive
        )
    except serial.SerialException as err:
        text = str(err).split("\n")[0]
        if "exclusively lock" in text:
            raise InputError(
                f"{clip(url)}: port busy: another program has it open (close it and retry)"
            ) from None
        raise InputError(f"{clip(url)}: cannot open port: {text}") from None
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


def reset_lines(url: str, steps: tuple[Step, ...], baud: int | None = None) -> None:
    """Open the port, play a DTR/RTS sequence (transport/reset.py) and close it again: the
    `--before`/`--after` resets around a session. Ports without modem lines are left alone."""
    if not steps or not is_serial_device(url):
        return
    try:
        with serial.Serial(url, baud or 115200, timeout=0) as port:
            apply_reset(port, steps)
    except (serial.SerialException, OSError) as err:
        raise LinkError(f"{url}: cannot set DTR/RTS for the reset ({err})") from None
