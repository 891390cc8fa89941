"""Plumbing shared by the line-based dialects (at-cmng, at-shell, zephyr-shell).

The drive loops' clock and their wait for a reply, discarding what nobody waits for, and
what a Zephyr shell prints around a command's output (colour codes, echo, prompt).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from provision.trace import LineSplitter
from provision.transport.base import Transport, transport_clock

EOL = b"\r\n"
# The longest shell output line read: a `cred get` of a full credential buffer, base64.
MAX_SHELL_LINE = 16 * 1024
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>78]")
PROMPT = re.compile(r"(?:^|\n)[\w.\-]*:~\$ ?$")
PROMPT_PREFIX = re.compile(r"^[\w.\-]*:~\$ ?")

T = TypeVar("T")


def now(transport: Transport) -> float:
    """The transport's clock if it has one (the simulator's virtual time), else the host's."""
    return transport_clock(transport)()


# How long a drain may take at most: a device that never stops talking (logs, an echo
# storm) must not hold the host in a drain forever.
DRAIN_LIMIT = 1.0


def drain(transport: Transport, quiet: float = 0.0, limit: float = DRAIN_LIMIT) -> None:
    """Discard what is waiting (late replies, boot banners) until `quiet` s pass silently,
    or `limit` s have passed in all."""
    deadline = now(transport) + limit
    while transport.read(4096, quiet) and now(transport) < deadline:
        pass


def read_until(
    transport: Transport,
    feed: Callable[[bytes], T | None],
    timeout: float,
    seen: LineSplitter | None = None,
) -> T | None:
    """Read and `feed` what arrives until it returns a result (None: `timeout` s passed).
    `seen`, the trace of the answer, gets every byte read and is flushed at the end."""
    deadline = now(transport) + timeout
    while (remaining := deadline - now(transport)) > 0:
        chunk = transport.read(4096, remaining)
        if chunk:
            if seen is not None:
                seen.feed(chunk)
            result = feed(chunk)
            if result is not None:
                if seen is not None:
                    seen.flush()
                return result
    if seen is not None:
        seen.flush()
    return None


def shell_text(data: bytes) -> str:
    """Shell output as text: VT100 codes removed, CR dropped."""
    return ANSI.sub(b"", data).decode("latin-1").replace("\r", "")


def probe_shell(transport: Transport, line: bytes, timeout: float, yes: re.Pattern[str]) -> bool:
    """Send `line` after a line end that flushes noise. True when the shell's output, once a
    prompt follows it, matches `yes`; False when the shell says "command not found" or nothing
    conclusive arrives within `timeout` s."""
    drain(transport)
    transport.write(EOL + line)
    buf = bytearray()

    def answer(chunk: bytes) -> bool | None:
        buf.extend(chunk)
        text = shell_text(bytes(buf))
        if not PROMPT.search(text):
            return None
        if yes.search(text):
            return True
        return False if "command not found" in text else None

    if read_until(transport, answer, timeout):
        drain(transport, min(0.1, timeout))
        return True
    return False


class ShellReader:
    """Collect the output of one command line, fed in any split, until the next prompt.

    VT100 colour codes are removed, the echo of the command and any prompt before it are
    dropped; what is left are the command's output lines (log lines included). Complete
    lines are cleaned once, as they arrive; a line longer than `max_line` is dropped as it
    grows (a device that never ends a line cannot fill the host's memory)."""

    def __init__(self, sent: bytes, max_line: int = MAX_SHELL_LINE) -> None:
        self._echo = sent.rstrip(b"\r\n").decode("latin-1")
        self._max_line = max_line
        self._partial = bytearray()
        self._lines: list[str] = []
        self.overflows = 0

    def feed(self, data: bytes) -> list[str] | None:
        self._partial += data
        end = self._partial.rfind(b"\n")
        if end >= 0:
            complete = shell_text(bytes(self._partial[: end + 1]))
            del self._partial[: end + 1]
            self._lines += complete.split("\n")[:-1]
        if len(self._partial) > self._max_line:
            self.overflows += 1
            self._partial.clear()
        # The prompt is the one line that does not end: it is what is left unterminated.
        tail = shell_text(bytes(self._partial))
        if not PROMPT.search("\n" + tail):
            return None
        lines = []
        for raw in [*self._lines, PROMPT.sub("", "\n" + tail)]:
            stripped = PROMPT_PREFIX.sub("", raw).strip()
            if stripped and stripped != self._echo:
                lines.append(stripped)
        return lines
