"""A simulated nRF91 board whose Zephyr shell has NCS's `at` command (lib/at_shell).

Sans-IO: `receive_data(bytes) -> bytes`. The shell part follows Zephyr subsys/shell: line
editing with echo (wrapped at the terminal width like `reprint_from_cursor`), a command
buffer of CONFIG_SHELL_CMD_BUFF_SIZE whose overflow is dropped without echo or warning
(`data_insert`), and the argument tokenizer of shell_utils.c `make_argv` (quotes, `\\'`,
`\\0ooo`, `\\xhh`; an unclosed quote → `not terminated: '`). The `at` command passes argv[1]
to the modem like at_shell.c (`nrf_modem_at_cmd(response, sizeof(response), "%s", command)`)
and prints the whole response with `shell_print`, or "Sending AT command failed with error
code -7" when it does not fit CONFIG_AT_SHELL_CMD_RESPONSE_MAX_LEN. The modem behind it is
the at-cmng simulator's command handler (`AtCmngModem.execute`), with its store and options.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from provision.sim.at_cmng import OPTIONS as modem_table
from provision.sim.at_cmng import (
    AtCmngModem,
    AtCmngOptions,
    MemoryStore,
    Store,
    check_modem_options,
    describe_options,
    identity_defaults,
    options_from_strings,
)
from provision.sim.zephyr_shell import ZephyrShellDevice, ZephyrShellOptions

if TYPE_CHECKING:
    from provision.sim.serve import SimContext

E2BIG = 7
CREDENTIALS_CMD = "AT%CMNG=0"  # at_shell.c: the only command CONFIG_AT_SHELL_UNESCAPE_LF touches
AT_USAGE = (
    "Usage: at <subcommand>\n"
    "\n"
    "Subcommands:\n"
    "  events_enable     Enable AT event handler which prints AT notifications\n"
    "  events_disable    Disable AT event handler\n"
    "\n"
    "Any other subcommand is interpreted as AT command and sent to the modem.\n"
)


@dataclass
class AtShellOptions(ZephyrShellOptions):
    terminal_width: int = 80  # CONFIG_SHELL_DEFAULT_TERMINAL_WIDTH: the echo wraps there (0: never)
    response_max_len: int = 2700  # CONFIG_AT_SHELL_CMD_RESPONSE_MAX_LEN
    unescape_lf: bool = False  # CONFIG_AT_SHELL_UNESCAPE_LF: "\n" → CR LF in AT%CMNG=0 commands
    wildcard: bool = False  # CONFIG_SHELL_WILDCARD: `?`/`*` arguments never reach `at`


def make_argv(line: str) -> tuple[list[str], str]:
    """Zephyr's shell tokenizer (shell_utils.c make_argv) → (argv, quote left open or "")."""
    argv: list[str] = []
    quote = ""
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        arg: list[str] = []
        quote = ""
        while i < n:
            c = line[i]
            if not quote and c == "\\":
                # Outside quotes a backslash is removed and the next character kept as is.
                if i + 1 < n:
                    arg.append(line[i + 1])
                i += 2
                continue
            if not quote and c in "'\"":
                quote = c
                i += 1
                continue
            if quote and c == quote:
                quote = ""
                i += 1
                continue
            if quote and c == "\\":
                t = line[i + 1 : i + 2]
                if t == quote:
                    arg.append(quote)
                    i += 2
                    continue
                if t in ("0", "x"):
                    digits = "01234567" if t == "0" else "0123456789abcdefABCDEF"
                    width = 3 if t == "0" else 2
                    run = ""
                    while len(run) < width and line[i + 2 + len(run) : i + 3 + len(run)] in (
                        set(digits)
                    ):
                        run += line[i + 2 + len(run)]
                    if run:
                        arg.append(chr(int(run, 8 if t == "0" else 16) & 0xFF))
                        i += 2 + len(run)
                        continue
            if not quote and c.isspace():
                break
            arg.append(c)
            i += 1
        argv.append("".join(arg))
    return argv, quote


class AtShellDevice(ZephyrShellDevice):
    """The device side of the at-shell dialect: a Zephyr shell in front of an nRF91 modem."""

    kind = "at-shell"

    def __init__(
        self,
        store: Store | None = None,
        options: AtShellOptions | None = None,
        modem_options: AtCmngOptions | None = None,
    ) -> None:
        store = store if store is not None else MemoryStore()
        super().__init__(store, options or AtShellOptions())
        self.options: AtShellOptions
        self.modem = AtCmngModem(store, modem_options)
        self._last_nl = 0

    def take_work_time(self) -> float:
        return self.modem.take_work_time()  # key generation, then flash time

    def boot(self) -> bytes:
        self.modem.boot()
        self._last_nl = 0
        return super().boot()

    def power_cut(self) -> None:
        super().power_cut()
        self.modem.power_cut()

    # -- bytes in, bytes out --------------------------------------------------------------
    def receive_data(self, data: bytes) -> bytes:
        out = bytearray()
        echo = self.options.echo
        for byte in data:
            if byte in (0x0D, 0x0A):
                # process_nl: the first CR or LF ends a line; the other kind right after it
                # (CR LF, LF CR) is ignored until a character that is no line end comes.
                if self._last_nl not in (0, byte):
                    continue
                self._last_nl = byte
                out += self._run_line()
                continue
            self._last_nl = 0
            if byte in (0x08, 0x7F):
                if self._line:
                    self._line.pop()
                    if echo:
                        out += b"\x08 \x08"
                continue
            if byte == 0x03:  # Ctrl+C: abandon the line
                self._line.clear()
                out += b"\r\n" + self._prompt().encode()
                continue
            if not 0x20 <= byte <= 0x7E:
                continue  # ascii_filter / isprint: no other byte becomes part of a line
            if len(self._line) + 1 >= self.options.cmd_buff_size:
                continue  # data_insert: a full buffer takes nothing more, without a word
            self._line.append(byte)
            if echo:
                out.append(byte)
                if self._at_line_end():
                    out += b"\r\n"  # reprint_from_cursor: the cursor moves to the next row
        return bytes(out)

    def _at_line_end(self) -> bool:
        width = self.options.terminal_width
        return width > 0 and (len(self.options.prompt) + len(self._line)) % width == 0

    def _run_line(self) -> bytes:
        text = self._line.decode("latin-1")
        # execute(): to the next row unless the echo has just wrapped there.
        head = b"" if (text and self.options.echo and self._at_line_end()) else b"\r\n"
        self._line.clear()
        out = self.execute_text(text) if text.strip() else ""
        return head + (out + self._prompt()).encode("latin-1")

    def execute_text(self, text: str) -> str:
        """One command line → what the shell prints before the next prompt (CR LF line ends)."""
        argv, quote = make_argv(text)
        if quote:
            return _crlf(self._err(f"not terminated: {quote}") + "\n")
        if not argv:
            return ""
        if argv[0] == "at":
            return self._at(argv)
        if argv[0] == "cred":
            # A board with the AT shell but no TLS credentials shell.
            return _crlf(self._err("cred: command not found") + "\n")
        return "".join(f"{line}\r\n" for line in self.execute(argv))

    def _at(self, argv: list[str]) -> str:
        if self.options.wildcard and any(("*" in a or "?" in a) for a in argv[1:]):
            # The wildcard pass finds no `at` subcommand matching and stops before the
            # argument: the handler runs with argc 1.
            argv = argv[:1]
        if len(argv) < 2:
            return _crlf(AT_USAGE + "\n")
        command = argv[1]
        if command == "events_enable":
            return "AT command event handler enabled\r\n"
        if command == "events_disable":
            return "AT command event handler disabled\r\n"
        if self.options.unescape_lf and command.startswith(CREDENTIALS_CMD):
            command = command.replace("\\n", "\r\n")
        lines, final = self.modem.execute(command)
        response = "".join(f"{line}\r\n" for line in lines) + final + "\r\n"
        if len(response) > self.options.response_max_len:
            return f"Sending AT command failed with error code -{E2BIG}\r\n"
        return _crlf(response + "\n")


def _crlf(text: str) -> str:
    """The shell's output with SHELL_FLAG_OLF_CRLF: every LF is sent as CR LF (a CR already
    in front of it stays, so a modem's CR LF arrives as CR CR LF)."""
    return text.replace("\n", "\r\n")


# The shell's options and the modem's behind it, in one query (`echo` is the shell's).
OPTIONS = {**modem_table, **describe_options(AtShellOptions)}


def create(ctx: SimContext) -> AtShellDevice:
    """Factory for `sim://at-shell?...` and `provision sim --dialect at-shell`: shell options
    (AtShellOptions) and modem options (AtCmngOptions) in one query."""
    from provision.errors import InputError

    shell_names = {f.name for f in fields(AtShellOptions)}
    modem_names = {f.name for f in fields(AtCmngOptions)}
    values = dict(ctx.options)
    unknown = set(values) - shell_names - modem_names - {"uid"}
    if unknown:
        valid = ", ".join(sorted(shell_names | modem_names))
        raise InputError(f"unknown at-shell option {sorted(unknown)[0]!r} (valid: {valid})")
    shell = {k: v for k, v in values.items() if k in shell_names}
    # `echo` is the shell's (the modem behind nrf_modem_at_cmd never echoes).
    modem = {k: v for k, v in values.items() if k in modem_names - shell_names}
    if "uid" in values:
        modem["uid"] = values["uid"]
    if "device_id" not in shell:
        shell["device_id"] = hashlib.sha256(f"at-shell-{ctx.seed}".encode()).hexdigest()[:16]
    identity_defaults(modem, ctx.seed)
    device = AtShellDevice(
        ctx.store,
        options_from_strings(shell, AtShellOptions),
        options_from_strings(modem, AtCmngOptions),
    )
    check_modem_options(device.modem.options)
    return device
