"""The one reader of input files: certificates, keys, CSRs, bundles, specs, station configs,
password and PIN files.

Only regular files are read. A FIFO, a character device (`/dev/zero`, a serial port), a
socket or a directory is refused without reading or blocking: `bundle inspect /dev/zero`
read until memory ran out and a FIFO with no writer hung forever. The size limit is checked
on the opened file (fstat) before any byte is read, and the read itself stops one byte past
the limit in case the file grows meanwhile. Every failure is a one-line InputError (exit 3)
or, for a file over the limit, a PolicyError (exit 6), naming the file (clipped).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

from provision.errors import InputError, PolicyError, clip

# Larger than any credential input, bundle or config this tool takes (a system CA bundle
# is ~200 kB); small enough that a wrong file name cannot exhaust memory.
MAX_INPUT_BYTES = 4 * 1024 * 1024

# O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting (the file
# type is then refused). O_NOCTTY: a terminal named by mistake never becomes ours.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def os_error_message(path: object, err: OSError, what: str = "file") -> str:
    """One line for an OSError about `path`: the same words whichever command hit it."""
    name = clip(str(path))
    if err.errno == errno.ENOENT:
        return f"{name}: {what} not found"
    if err.errno == errno.EISDIR:
        return f"{name}: is a directory, expected a {what}"
    reason = err.strerror or type(err).__name__
    return f"{name}: cannot read {what}: {reason}"


def _refuse_kind(path: object, mode: int, what: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise InputError(f"{clip(str(path))}: is a directory, expected a {what}")
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise InputError(f"{clip(str(path))}: is {kind}, expected a regular {what}")


def read_input(path: Path | str, what: str, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a regular file named by the user (`-`: standard input, for a command's
    one input); `what` names it in messages ("private key" → "dev.key: private key file not
    found")."""
    what_file = f"{what} file"
    if str(path) == "-":
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise PolicyError(f"standard input: {what} is over {limit} bytes")
        return data
    try:
        # stat first: a device or FIFO is refused without even opening it (opening a
        # serial port toggles its modem lines).
        _refuse_kind(path, os.stat(path).st_mode, what_file)
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        if isinstance(err, ValueError):
            raise InputError(f"{clip(str(path))}: not a valid file name") from None
        raise InputError(os_error_message(path, err, what_file)) from None
    try:
        info = os.fstat(fd)
        _refuse_kind(path, info.st_mode, what_file)  # replaced between stat and open
        if info.st_size > limit:
            raise PolicyError(
                f"{clip(str(path))}: {what} file is {info.st_size} bytes (at most {limit})"
            )
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise PolicyError(f"{clip(str(path))}: {what} file grew past {limit} bytes")
        return b"".join(chunks)
    except OSError as err:
        raise InputError(os_error_message(path, err, what_file)) from None
    finally:
        os.close(fd)


def read_text(path: Path | str, what: str, *, limit: int = MAX_INPUT_BYTES) -> str:
    """A UTF-8 text file (a TOML config, a password file); other bytes are an InputError."""
    data = read_input(path, what, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{clip(str(path))}: {what} file is not UTF-8 text") from None


def read_first_line(path: Path | str, what: str) -> str:
    """The first line of a password or PIN file (without its line end); empty is an error.
    The value itself never appears in a message."""
    lines = read_text(path, what, limit=64 * 1024).splitlines()
    if not lines or not lines[0]:
        raise InputError(f"{clip(str(path))}: {what} file is empty")
    return lines[0]
