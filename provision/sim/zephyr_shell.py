"""A simulated Zephyr device: the serial shell with the TLS credentials `cred` command.

Sans-IO: `receive_data(bytes) -> bytes`. Line editing, echo, prompt and colours follow the
Zephyr shell over a UART; the `cred` subcommands print the messages of Zephyr
subsys/net/lib/tls_credentials/tls_credentials_shell.c, and digests are base64(SHA-256) of
the stored bytes as tls_credentials_digest_raw.c computes them. The store persists like the
protected-storage backend.

Storage is a `store` with `entries() -> Mapping[(sec_tag, type), bytes]` and
`commit(changes)`; types are Zephyr's enum tls_credential_type values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provision.sim.at_cmng import MemoryStore, Store, options_from_strings

if TYPE_CHECKING:
    from provision.sim.serve import SimContext

# enum tls_credential_type
CA_CERTIFICATE, SERVER_CERTIFICATE, PRIVATE_KEY, PSK, PSK_ID = 1, 2, 3, 4, 5
# (name, type) in the shell's order: the first name of a type is its human-readable name,
# the last its compact name (cred list).
TYPE_STRINGS: tuple[tuple[str, int], ...] = (
    ("CA_CERT", CA_CERTIFICATE),
    ("CA", CA_CERTIFICATE),
    ("SERVER_CERT", SERVER_CERTIFICATE),
    ("CLIENT_CERT", SERVER_CERTIFICATE),
    ("SELF_CERT", SERVER_CERTIFICATE),
    ("SELF", SERVER_CERTIFICATE),
    ("CLIENT", SERVER_CERTIFICATE),
    ("SERV", SERVER_CERTIFICATE),
    ("PRIVATE_KEY", PRIVATE_KEY),
    ("PK", PRIVATE_KEY),
    ("PRE_SHARED_KEY", PSK),
    ("PSK", PSK),
    ("PRE_SHARED_KEY_ID", PSK_ID),
    ("PSK_ID", PSK_ID),
)
FORMATS = {"bin": (True, False), "bint": (True, True), "str": (False, False), "strt": (False, True)}
RED, YELLOW, GREEN, RESET = "\x1b[1;31m", "\x1b[1;33m", "\x1b[1;32m", "\x1b[0m"
SEC_TAG_MAX = 2_147_483_647  # sec_tag_t is a signed int


def type_name(kind: int) -> str:
    return next(n for n, t in TYPE_STRINGS if t == kind)


def compact_name(kind: int) -> str:
    return next(n for n, t in reversed(TYPE_STRINGS) if t == kind)


@dataclass
class ZephyrShellOptions:
    prompt: str = "uart:~$ "
    echo: bool = True
    vt100: bool = True  # CONFIG_SHELL_VT100_COLORS
    cmd_buff_size: int = 256  # CONFIG_SHELL_CMD_BUFF_SIZE
    cred_buf_size: int = 1024  # CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE
    output_width: int = 32  # CONFIG_TLS_CREDENTIALS_SHELL_CRED_OUTPUT_WIDTH
    max_credentials: int = 8  # CONFIG_TLS_MAX_CREDENTIALS_NUMBER (4 by default in Zephyr)
    device_id: str = "5a3f09c27e4d11b8"
    version: str = "3.7.0"
    banner: bool = True  # "*** Booting Zephyr OS ..." on boot


class ZephyrShellDevice:
    """The device side of the zephyr-shell dialect."""

    kind = "zephyr-shell"

    def __init__(self, store: Store | None = None, options: ZephyrShellOptions | None = None):
        self.store = store if store is not None else MemoryStore()
        self.options = options or ZephyrShellOptions()
        self._line = bytearray()
        self._credbuf = bytearray()
        self._last = 0
        self._overflowed = False

    # -- time, for the runner's line model (provision.sim.serve) ---------------------------
    def take_work_time(self) -> float:
        flash = getattr(self.store, "flash", None)
        return flash.take_busy() if flash is not None else 0.0

    def idle(self) -> None:
        erase_spare = getattr(self.store, "erase_spare", None)
        if erase_spare is not None:
            erase_spare()

    # -- lifecycle ------------------------------------------------------------------------
    def boot(self) -> bytes:
        self._line.clear()
        self._credbuf.clear()
        self._last = 0
        self._overflowed = False
        banner = ""
        if self.options.banner:
            banner = f"*** Booting Zephyr OS build v{self.options.version} ***\r\n"
        return (banner + self._prompt()).encode()

    def power_cut(self) -> None:
        self._line.clear()
        self._credbuf.clear()

    def _prompt(self) -> str:
        if self.options.vt100:
            return f"{GREEN}{self.options.prompt}{RESET}"
        return self.options.prompt

    # -- bytes in, bytes out --------------------------------------------------------------
    def receive_data(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            last, self._last = self._last, byte
            if byte in (0x0D, 0x0A):
                if byte == 0x0A and last == 0x0D:
                    continue  # CR LF is one line end
                out += b"\r\n"
                out += self._execute_line()
                continue
            if byte in (0x08, 0x7F):
                if self._line:
                    self._line.pop()
                    if self.options.echo:
                        out += b"\x08 \x08"
                continue
            if byte == 0x03:  # Ctrl+C: abandon the line
                self._line.clear()
                out += b"\r\n" + self._prompt().encode()
                continue
            if byte < 0x20 or byte > 0x7E:
                continue  # other control bytes and noise are not typed characters
            if len(self._line) + 1 >= self.options.cmd_buff_size:
                self._overflowed = True
                continue
            self._line.append(byte)
            if self.options.echo:
                out.append(byte)
        return bytes(out)

    def _execute_line(self) -> bytes:
        text = self._line.decode("latin-1")
        self._line.clear()
        out: list[str] = []
        if self._overflowed:
            # Modelled on the UART backend's warning when input arrives faster than the shell
            # drains it: the tail of an over-long line is lost.
            self._overflowed = False
            out.append(self._color(YELLOW, "<wrn> shell_uart: RX ring buffer full."))
        argv = text.split()
        if argv:
            out.extend(self.execute(argv))
        return ("".join(f"{ln}\r\n" for ln in out) + self._prompt()).encode("latin-1")

    def _color(self, color: str, text: str) -> str:
        return f"{color}{text}{RESET}" if self.options.vt100 else text

    def _err(self, text: str) -> str:
        return self._color(RED, text)

    # -- commands -------------------------------------------------------------------------
    def execute(self, argv: list[str]) -> list[str]:
        cmd = argv[0]
        if cmd == "cred":
            return self._cred(argv[1:])
        if argv == ["kernel", "version"]:
            return [f"Zephyr version {self.options.version}"]
        if argv == ["hwinfo", "devid"]:
            return [
                f"Length: {len(self.options.device_id) // 2}",
                f"ID: 0x{self.options.device_id}",
            ]
        return [self._err(f"{cmd}: command not found")]

    def _cred(self, args: list[str]) -> list[str]:
        arity = {"buf": (1, 1), "add": (4, 5), "del": (2, 2), "get": (3, 3), "list": (0, 2)}
        # Simulator-only extension (docs/tls-check.md), not a command of Zephyr's shell.
        arity["tlscheck"] = (3, 4)
        if not args or args[0] not in arity:
            return [self._err("cred: missing or unknown subcommand (buf add del get expiry list)")]
        sub, rest = args[0], args[1:]
        low, high = arity[sub]
        if not low <= len(rest) <= high:
            return [self._err(f"cred {sub}: wrong parameter count")]
        return getattr(self, f"_cred_{sub}")(rest)

    def _sectag(self, arg: str, out: list[str], allow_any: bool = False) -> int | None:
        if allow_any and arg.lower() == "any":
            return -1
        if not arg.isdecimal() or int(arg) > SEC_TAG_MAX:
            out.append(self._err(f"{arg} is not a valid sectag."))
            return None
        return int(arg)

    def _type(self, arg: str, out: list[str], allow_any: bool = False) -> int | None:
        if allow_any and arg.lower() == "any":
            return -1
        for name, kind in TYPE_STRINGS:
            if name.lower() == arg.lower():
                return kind
        out.append(self._err(f"{arg} is not a valid credential type."))
        return None

    def _clear(self, out: list[str]) -> None:
        if self._credbuf:
            out.append("Credential buffer cleared.")
        self._credbuf.clear()

    def _write_buf(self, chunk: str, out: list[str]) -> bool:
        data = chunk.encode("latin-1")
        # cred_buf_write: refused when writehead + len >= cred_buf + sizeof(cred_buf) - 1 (one
        # byte is kept for the NUL of `bint`), so a credential may hold size - 2 characters.
        if len(self._credbuf) + len(data) >= self.options.cred_buf_size - 1:
            out.append(
                self._err(
                    "Not enough room in credential buffer for provided data. "
                    "Increase CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE."
                )
            )
            self._clear(out)
            return False
        self._credbuf += data
        out.append(f"Stored {len(data)} bytes.")
        return True

    def _cred_buf(self, rest: list[str]) -> list[str]:
        out: list[str] = []
        if rest[0] == "clear":
            self._credbuf.clear()
            return ["Credential buffer cleared."]
        self._write_buf(rest[0], out)
        return out

    def _cred_add(self, rest: list[str]) -> list[str]:
        out: list[str] = []
        result = self._add(rest, out)
        if result is not None:
            out.append(result)
        self._clear(out)
        return out

    def _add(self, rest: list[str], out: list[str]) -> str | None:
        sectag = self._sectag(rest[0], out)
        if sectag is None:
            return None
        kind = self._type(rest[1], out)
        if kind is None:
            return None
        if rest[2].lower() != "default":
            return self._err(f"{rest[2]} is not a valid backend.")
        fmt = FORMATS.get(rest[3].lower())
        if fmt is None:
            return self._err(f"{rest[3]} is not a valid storage format.")
        binary, terminated = fmt
        if len(rest) == 5:
            self._clear(out)
            if not self._write_buf(rest[4], out):
                return None
        if not self._credbuf:
            return self._err("Please provide a credential to add.")
        entries = self.store.entries()
        if (sectag, kind) in entries:
            return self._err(
                f"TLS credential with sectag {sectag} and type {type_name(kind)} already exists."
            )
        data = bytes(self._credbuf)
        if binary:
            try:
                data = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                return self._err("Could not decode input from base64, error: -22")
        if terminated:
            data += b"\x00"
        if len(entries) >= self.options.max_credentials:
            return self._err(
                f"Failed to add TLS credential with sectag {sectag} and type "
                f"{type_name(kind)}. Error: -12\n."
            )
        from provision.sim.store import StoreFull

        try:
            self.store.commit({(sectag, kind): data})
        except StoreFull:
            return self._err(
                f"Failed to add TLS credential with sectag {sectag} and type "
                f"{type_name(kind)}. Error: -12\n."
            )
        return (
            f"Added TLS credential of type {type_name(kind)}, sectag {sectag}, "
            f"and length {len(data)} bytes."
        )

    def _cred_tlscheck(self, rest: list[str]) -> list[str]:
        """A real mutual-TLS handshake with only this tag's credentials; one JSON line."""
        from provision.tls.device_side import shell_tlscheck

        return shell_tlscheck(self.store.entries(), rest)

    def _cred_del(self, rest: list[str]) -> list[str]:
        out: list[str] = []
        sectag = self._sectag(rest[0], out)
        kind = self._type(rest[1], out) if sectag is not None else None
        if sectag is None or kind is None:
            return out
        if (sectag, kind) not in self.store.entries():
            return [
                self._err(
                    f"There is no TLS credential with sectag {sectag} and type {type_name(kind)}."
                )
            ]
        self.store.commit({(sectag, kind): None})
        return [f"Deleted TLS credential with sectag {sectag} and type {type_name(kind)}."]

    def _cred_get(self, rest: list[str]) -> list[str]:
        out: list[str] = []
        sectag = self._sectag(rest[0], out)
        kind = self._type(rest[1], out) if sectag is not None else None
        fmt = FORMATS.get(rest[2].lower()) if kind is not None else None
        if sectag is None or kind is None:
            return out
        if fmt is None:
            return [self._err(f"{rest[2]} is not a valid storage format.")]
        data = self.store.entries().get((sectag, kind))
        if data is None:
            return [
                self._err(
                    f"There is no TLS credential with sectag {sectag} and type {type_name(kind)}."
                )
            ]
        binary, terminated = fmt
        self._credbuf[:] = data
        if terminated:
            if not data or data[-1] != 0:
                out.append(
                    self._err(
                        "The stored credential isn't NULL-terminated, but a NULL-terminated "
                        "format was specified."
                    )
                )
                self._clear(out)
                return out
            data = data[:-1]
        width = self.options.output_width
        step = width // 4 * 3 if binary else width
        for i in range(0, len(data), step):
            piece = data[i : i + step]
            if binary:
                out.append(base64.b64encode(piece).decode())
            else:
                out.append("".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in piece))
        self._clear(out)
        return out

    def _cred_list(self, rest: list[str]) -> list[str]:
        out: list[str] = []
        tag_filter = self._sectag(rest[0], out, allow_any=True) if rest else -1
        kind_filter = self._type(rest[1], out, allow_any=True) if len(rest) > 1 else -1
        if tag_filter is None or kind_filter is None:
            return out
        count = 0
        for (tag, kind), data in sorted(self.store.entries().items()):
            if tag_filter not in (-1, tag) or kind_filter not in (-1, kind):
                continue
            count += 1
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
            out.append(f"{tag},{compact_name(kind)},{digest},0")
        out.append(f"{count} credentials found.")
        return out


def _options() -> dict[str, str]:
    from provision.sim.at_cmng import describe_options

    table = describe_options(ZephyrShellOptions)
    table["device_id"] = "device id (default: derived from uid or seed)"
    return {**table, "uid": "device id (the same as device_id)"}


OPTIONS = _options()


def create(ctx: SimContext) -> ZephyrShellDevice:
    """Factory for `sim://zephyr-shell?...` and `provision sim --dialect zephyr-shell`."""
    values = dict(ctx.options)
    if "uid" in values:
        values.setdefault("device_id", values.pop("uid"))
    if "device_id" not in values:
        values["device_id"] = hashlib.sha256(f"zephyr-{ctx.seed}".encode()).hexdigest()[:16]
    options = options_from_strings(values, ZephyrShellOptions)
    return ZephyrShellDevice(ctx.store, options)
