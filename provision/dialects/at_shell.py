"""The `at-shell` dialect: an nRF91 modem reached through a Zephyr shell's `at` command.

NCS applications with CONFIG_AT_SHELL (lib/at_shell/at_shell.c) have a shell command
`at <AT command>` that hands argv[1] to the modem with nrf_modem_at_cmd() and prints the
modem's whole response. So this dialect speaks at-cmng (its encoders, reply parser, write
plan, +CFUN handling and +CME error mapping are reused as they are) with each AT command
wrapped in one shell line, and reads each answer up to the shell prompt like zephyr-shell.

How a command becomes one shell argument (Zephyr subsys/shell/shell_utils.c make_argv): the
whole AT command goes in single quotes, so its spaces and double quotes survive; inside
them `\\xhh` is decoded by the shell itself, which carries the PEM's line feeds (a raw LF
would end the shell line) and any `'` or `\\`. The modem therefore stores the same LF-only
bytes as over the plain AT interface, and needs no CONFIG_AT_SHELL_UNESCAPE_LF.

Limits: the whole line must fit the shell's command buffer (CONFIG_SHELL_CMD_BUFF_SIZE,
256 by default: no certificate fits). %CMNG has no way to send a credential in parts, so a
credential whose line does not fit is refused before anything is written; the driver learns
the buffer size from a padded harmless line (see `fit_probe_line`) unless told.
"""

from __future__ import annotations

import dataclasses
import re
from typing import ClassVar

from provision.bundle.model import CredentialSet, SlotType
from provision.dialects import at_cmng
from provision.dialects.at_cmng import (
    AtCmngSession,
    Reply,
    ReplyReader,
    encode_write,
    plan_write,
)
from provision.dialects.base import DeviceInfo, DialectProfile, Holdings, Progress, WriteResult
from provision.dialects.drive import retried
from provision.dialects.lines import EOL, ShellReader, drain, probe_shell, read_until
from provision.errors import DeviceError, LinkError, PolicyError, ProvisionError
from provision.trace import TraceLog
from provision.transport.base import Transport, send

NAME = "at-shell"
# Zephyr's default CONFIG_SHELL_CMD_BUFF_SIZE; one byte of it is the string terminator.
DEFAULT_CMD_BUFF_SIZE = 256
_KEEP = frozenset(range(0x20, 0x7F)) - {ord("'"), ord("\\")}
_E2BIG = "Sending AT command failed with error code -7"
_OK_LINE = re.compile(r"(?:^|\n)OK\n")
_FAILED = re.compile(r"Sending AT command failed with error code (-?\d+)")

# The modem's limits are at-cmng's; the shell's command buffer is a setting of each device,
# checked by the session before it writes (see _check_fits).
PROFILE = dataclasses.replace(
    at_cmng.PROFILE,
    dialect=NAME,
    description="nRF91 modem through an NCS shell's `at` command (one shell line per AT%CMNG)",
    encodings=at_cmng.PROFILE.encodings + r"; line feeds as \x0a inside the shell line",
)


# ---------------------------------------------------------------------------------------------
# Sans-IO: shell lines and what the shell prints back


def shell_line(at_command: bytes) -> bytes:
    """An at-cmng command (with or without its CR LF) as one `at '...'` shell line."""
    body = at_command.removesuffix(b"\r\n")
    quoted = "".join(chr(b) if b in _KEEP else f"\\x{b:02x}" for b in body)
    return f"at '{quoted}'".encode("ascii") + EOL


def line_chars(line: bytes) -> int:
    """Characters of a shell line that occupy the command buffer (its CR LF does not)."""
    return len(line.removesuffix(EOL))


def fit_probe_line(chars: int) -> bytes:
    """A harmless line of exactly `chars` characters: `at`, spaces, `'AT'`. If the buffer is
    too small the shell drops the tail, and with it the quoted AT (usage text or `not
    terminated`); if it fits, the modem answers OK to a bare AT."""
    return b"at" + b" " * max(1, chars - 6) + b"'AT'" + EOL


def strip_echo(lines: list[str], sent: bytes) -> list[str]:
    """Remove the shell's echo of `sent`, which it wraps at the terminal width into several
    rows (compared without whitespace: the rows are stripped)."""
    target = "".join(sent.decode("latin-1").split())
    for start in range(len(lines)):
        acc = ""
        for end in range(start, len(lines)):
            acc += "".join(lines[end].split())
            if acc == target:
                return lines[:start] + lines[end + 1 :]
            if not target.startswith(acc):
                break
    return lines


@dataclasses.dataclass(frozen=True)
class ShellAnswer:
    """What one `at` line produced: the modem's reply, or why the shell gave none."""

    reply: Reply | None
    problem: str | None = None  # "truncated", "e2big", "not-found", "usage", "failed:<n>"


def parse_answer(lines: list[str], at_command: bytes, prefix: str | None) -> ShellAnswer:
    """The output lines of one `at` line (echo and prompt removed) → the modem's reply."""
    reader = ReplyReader(at_command, prefix)
    reply = reader.feed("\n".join(lines).encode("latin-1") + b"\n")
    if reply is not None:
        return ShellAnswer(reply)
    for text in lines:
        if text.startswith("not terminated:"):
            return ShellAnswer(None, "truncated")
        if text.startswith("Usage: at"):
            return ShellAnswer(None, "usage")
        if text.startswith("at: command not found"):
            return ShellAnswer(None, "not-found")
        failed = _FAILED.search(text)
        if failed:
            return ShellAnswer(None, "e2big" if text.startswith(_E2BIG) else f"failed:{failed[1]}")
    return ShellAnswer(None)


# ---------------------------------------------------------------------------------------------
# The drive loop


class AtShellSession(AtCmngSession):
    """An nRF91 modem behind a Zephyr shell's `at` command: AtCmngSession with each exchange
    carried by one shell line. `cmd_buff_size` is the device's CONFIG_SHELL_CMD_BUFF_SIZE
    when known; otherwise the driver asks the shell before a write (one padded line)."""

    name: ClassVar[str] = NAME
    profile: ClassVar[DialectProfile] = PROFILE

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float,
        retries: int,
        cmd_buff_size: int | None = None,
        trace: TraceLog | None = None,
    ) -> None:
        self._cmd_buff_size = cmd_buff_size
        self._fits = 0  # longest line the shell is known to hold
        super().__init__(transport, timeout=timeout, retries=retries, trace=trace)

    def _sync(self) -> None:
        """Align with the shell like zephyr-shell: an empty line, then read until quiet."""
        self._shell_output(EOL, "an empty line", retry=True)
        drain(self._transport, min(0.1, self._timeout))

    @classmethod
    def probe(cls, transport: Transport, timeout: float) -> bool:
        """A shell whose `at AT` gets the modem's OK. An AT interpreter without a shell
        answers the line with ERROR; a shell without `at` says "command not found"."""
        return probe_shell(transport, b"at AT" + EOL, timeout, _OK_LINE)

    # -- the one place that talks to the transport -------------------------------------------
    def _shell_output(
        self, line: bytes, what: str, *, retry: bool, timeout: float | None = None
    ) -> list[str]:
        """Send one shell line; its output lines up to the next prompt, echo removed."""
        wait = self._timeout if timeout is None else timeout
        attempts = 1 + (self._retries if retry else 0)

        def attempt() -> list[str] | None:
            reader = ShellReader(b"")
            self._transport.write(line)
            self.bytes_sent += len(line)
            lines = read_until(self._transport, reader.feed, wait)
            return None if lines is None else strip_echo(lines, line.removesuffix(EOL))

        return retried(
            attempt,
            attempts=attempts,
            no_answer=lambda: LinkError(
                f"at-shell: no prompt after {what} within {wait:g} s ({attempts} attempt(s))",
                code="link.timeout",
            ),
            resync=lambda: drain(self._transport, min(0.1, wait)),
        )

    def _attempt(
        self, data: bytes, what: str, prefix: str | None, wait: float
    ) -> Reply | ProvisionError | None:
        """One AT command as one shell line, once. A line the shell cut or could not split
        (it lost its closing quote on the way) is worth another try; the shell's own other
        answers are the same every time and are raised."""
        line = shell_line(data)
        reader = ShellReader(b"")
        on_sent = self._on_sent  # counts the AT command's bytes: scaled from the shell line's
        send(self._transport, line, on_sent and (lambda n: on_sent(n * len(data) // len(line))))
        self.bytes_sent += len(line)
        self._sends += 1
        lines = read_until(self._transport, reader.feed, wait)
        if lines is None:
            return None
        answer = parse_answer(strip_echo(lines, line.removesuffix(EOL)), data, prefix)
        if answer.reply is not None:
            return answer.reply
        error = _shell_error(what, answer.problem, line_chars(line))
        if answer.problem not in (None, "truncated", "usage"):
            raise error
        return error

    def _no_answer(self, what: str, wait: float, attempts: int) -> LinkError:
        return LinkError(
            f"at-shell: no prompt after {what} within {wait:g} s ({attempts} attempt(s))",
            code="link.timeout",
        )

    def _resync(self) -> None:
        """The modem behind the shell gets whole commands; what needs aligning is the shell:
        read away what is still coming (a late prompt) before the next line."""
        drain(self._transport, min(0.1, self._timeout))

    # -- fitting the shell's command buffer ---------------------------------------------------
    def _check_fits(self, chars: int, where: str) -> None:
        """PolicyError (nothing written) unless the shell holds a line of `chars` characters."""
        if self._cmd_buff_size is not None:
            if chars + 1 > self._cmd_buff_size:
                raise _too_long(where, chars, f"{self._cmd_buff_size} bytes")
            return
        if chars <= self._fits:
            return
        # A cut line twice (once without retries) means the buffer, not noise on the line.
        cuts_needed = min(2, 1 + self._retries)
        for _ in range(2 + self._retries):
            lines = self._shell_output(fit_probe_line(chars), "a buffer check line", retry=True)
            answer = parse_answer(lines, b"AT", None)
            if answer.reply is not None and answer.reply.ok:
                self._fits = chars
                return
            if answer.problem in ("truncated", "usage"):
                cuts_needed -= 1
                if cuts_needed == 0:
                    raise _too_long(where, chars, "less")
        raise LinkError(
            f"at-shell: the shell's `at AT` check line got no OK ({where})",
            code="at-shell.buffer_check",
        )

    def write(
        self,
        credentials: CredentialSet,
        progress: Progress | None = None,
        *,
        held: Holdings | None = None,
    ) -> WriteResult:
        plans = plan_write(credentials)  # PolicyError here: nothing sent yet
        longest = max(plans, key=lambda p: len(shell_line(encode_write(p))), default=None)
        if longest is not None:
            self._check_fits(line_chars(shell_line(encode_write(longest))), longest.where)
        return super().write(credentials, progress, held=held)

    def info(self) -> DeviceInfo:
        found = super().info()
        details = dict(found.details)
        if self._cmd_buff_size is not None:
            details["cmd_buff_size"] = self._cmd_buff_size
        return dataclasses.replace(found, dialect=NAME, details=details)

    def read(self, sec_tag: int, slot_type: SlotType) -> bytes:
        try:
            return super().read(sec_tag, slot_type)
        except DeviceError as err:
            if err.code != "at-shell.e2big":
                raise
            raise DeviceError(
                f"sec_tag {sec_tag} {slot_type.label}: the credential is longer than the "
                "shell's AT response buffer (CONFIG_AT_SHELL_CMD_RESPONSE_MAX_LEN, 2700 by "
                "default); list and verify digests instead",
                code="at-shell.e2big",
            ) from None


def _too_long(where: str, chars: int, buffer: str) -> PolicyError:
    return PolicyError(
        f"{where}: the `at` shell line would be {chars} characters and the shell's command "
        f"buffer holds {buffer} (CONFIG_SHELL_CMD_BUFF_SIZE must be at least {chars + 1}); "
        "AT%CMNG cannot take a credential in parts, so nothing was written",
        code="at-shell.line_too_long",
    )


def _shell_error(what: str, problem: str | None, chars: int) -> ProvisionError:
    if problem == "e2big":
        return DeviceError(
            f"{what}: the modem's reply is longer than the shell's AT response buffer "
            "(CONFIG_AT_SHELL_CMD_RESPONSE_MAX_LEN)",
            code="at-shell.e2big",
        )
    if problem == "not-found":
        return DeviceError(
            "the shell has no `at` command (the application needs CONFIG_AT_SHELL)",
            code="at-shell.no-at",
        )
    if problem == "usage":
        return DeviceError(
            f"{what}: the shell did not pass the command to `at` (with CONFIG_SHELL_WILDCARD "
            "a command containing ? or * never reaches it: turn the option off)",
            code="at-shell.wildcard",
        )
    if problem == "truncated":
        return LinkError(
            f"{what}: the shell lost the end of the {chars}-character line (`not terminated`): "
            "bytes dropped on the line or a command buffer smaller than the line",
            code="at-shell.line_cut",
        )
    if problem and problem.startswith("failed:"):
        return DeviceError(
            f"{what}: nrf_modem_at_cmd failed with error code {problem[7:]}",
            code="at-shell.failed",
        )
    return LinkError(
        f"{what}: the shell printed no AT result (OK, ERROR or +CME ERROR)",
        code="at-shell.no_result",
    )


SESSION = AtShellSession
