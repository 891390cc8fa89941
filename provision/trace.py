"""`--trace` (esptool's habit): everything that crosses the line, timestamped, on stderr.

Drive loops call it (protocol code stays sans-IO); each dialect says what a frame or line
means and which part of it is secret. Key bytes, PSKs and passwords never reach the output:
the dialect redacts them where it knows their place, and every secret it registers with
`secret()` is scrubbed from any text written after, as a net for what structure misses
(a device's echo of a line, a line split by noise).

`PROVISION_TRACE=1` in the environment turns the trace on where no `--trace` was given.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

ENV = "PROVISION_TRACE"
_BYTES_PER_ROW = 16
_INDENT = " " * 13  # under the "  12.3456 tx " prefix
# Shorter secrets would scrub ordinary text; their structural redaction covers them.
_MIN_SCRUB = 4


def env_enabled() -> bool:
    return os.environ.get(ENV) == "1"


def printable(text: str) -> str:
    """A line as one printable line: control characters escaped (\\r, \\n, \\x1b, ...)."""
    return "".join(
        c if " " <= c <= "~" else {"\r": "\\r", "\n": "\\n", "\t": "\\t"}.get(c, f"\\x{ord(c):02x}")
        for c in text
    )


class TraceLog:
    """Writes trace records; `clock` is the drive loop's clock (virtual time on sim://)."""

    def __init__(self, clock: Callable[[], float], stream: TextIO | None = None) -> None:
        self.clock = clock
        self.start = clock()
        self._stream = stream
        self._secrets: list[str] = []

    def secret(self, *values: bytes | str) -> None:
        """Never print these (as text, or as lower/upper hex for bytes) from now on."""
        for value in values:
            forms = [value] if isinstance(value, str) else [value.decode("latin-1"), value.hex()]
            if isinstance(value, bytes):
                forms.append(value.hex().upper())
            for form in forms:
                if len(form) >= _MIN_SCRUB and form not in self._secrets:
                    self._secrets.append(form)
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets.sort(key=len, reverse=True)

    def _scrub(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, f"<{len(s)} chars redacted>")
        return text

    def _emit(self, direction: str, first: str, more: Sequence[str] = ()) -> None:
        stamp = f"{self.clock() - self.start:9.4f}"
        out = [f"{stamp} {direction} {self._scrub(first)}"]
        out += [_INDENT + self._scrub(m) for m in more]
        stream = self._stream or sys.stderr  # looked up late: CliRunner swaps sys.stderr
        stream.write("\n".join(out) + "\n")
        stream.flush()

    def frame(
        self,
        direction: str,
        body: bytes,
        meaning: str,
        *,
        redact_from: int | None = None,
        hide: Sequence[tuple[int, int]] = (),
    ) -> None:
        """A binary frame as a hex dump under its decoded meaning; bytes from `redact_from`
        on (a chunk that may hold key bytes) are shown by their count only, bytes in the
        `hide` spans [start, end) (a secret slot's digest) as `**`."""
        shown = body if redact_from is None else body[:redact_from]
        hidden = {i for start, end in hide for i in range(start, end)}
        rows = []
        for i in range(0, len(shown), _BYTES_PER_ROW):
            at = range(i, min(i + _BYTES_PER_ROW, len(shown)))
            hexes = " ".join("**" if j in hidden else f"{shown[j]:02x}" for j in at)
            text = "".join(
                "*" if j in hidden else chr(shown[j]) if 0x20 <= shown[j] < 0x7F else "."
                for j in at
            )
            rows.append(f"{i:04x}  {hexes:<47s}  |{text}|")
        if redact_from is not None and len(body) > redact_from:
            rows.append(f"{redact_from:04x}  <{len(body) - redact_from} bytes redacted>")
        self._emit(direction, meaning, rows)

    def line(self, direction: str, text: str, meaning: str = "") -> None:
        """One text line (without its line end), and what it means when known."""
        shown = printable(text)
        self._emit(direction, f"{shown}   # {meaning}" if meaning else shown)

    def note(self, direction: str, text: str) -> None:
        self._emit(direction, f"({text})")


class LineSplitter:
    """Received bytes → whole lines for the trace (a line may arrive over several reads)."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data
        while (end := self._buf.find(b"\n")) >= 0:
            raw = bytes(self._buf[:end])
            del self._buf[: end + 1]
            self._emit(raw.decode("latin-1").rstrip("\r"))

    def flush(self) -> None:
        """What is left without a line end (a prompt, a cut line)."""
        if self._buf:
            raw, self._buf = bytes(self._buf), bytearray()
            # A reply can be complete at its CR, before the LF has arrived.
            self._emit(raw.decode("latin-1").rstrip("\r"))


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{12,}")


def redact_base64_runs(text: str) -> str:
    """For what a device sends back while a secret is being written (its echo): any run of
    base64 characters long enough to be part of the secret, even an echo damaged by noise
    that `secret()` scrubbing would not recognise, shows as its length."""
    return _BASE64_RUN.sub(lambda m: f"<{len(m[0])} chars redacted>", text)
