"""A simulated nRF91 modem behind NCS's AT host: AT%CMNG, AT%KEYGEN, +CFUN, +CMEE, +CGSN.

Sans-IO: `receive_data(bytes) -> bytes` runs the byte-level state machine of
nRF Connect SDK lib/at_host/at_host.c (termination outside quotes only, backspace, a
4096-byte command buffer whose overflow is dropped without a word), then answers each command
the way Nordic's AT command reference documents. What the public sources leave open is a
constructor option (see docs/dialects.md for each choice).

Storage is a `store` with `entries() -> Mapping[(sec_tag, type), bytes]` and
`commit(changes)`, where a change maps a key to new bytes or None (delete).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MAX_SEC_TAG = 2_147_483_647
MAX_TAG_VALUE = 4_294_967_295
AT_BUF_SIZE = 4096
ACTIVE_CFUN_MODES = frozenset({1, 2, 21})
VALID_CFUN_MODES = frozenset({0, 1, 2, 4, 20, 21, 30, 31, 40, 41, 44})
WRITABLE_TYPES = frozenset({0, 1, 2, 3, 4, 5})
# Secrets never leave the modem: reading them is refused with 514.
UNREADABLE_TYPES = frozenset({2, 3, 8, 9})
# Entries the modem firmware keeps for itself in reserved tags (listed, never writable).
INTERNAL_ENTRIES: dict[tuple[int, int], bytes] = {
    (4294967292, 11): b"nordic base public key (simulated)",
    (4294967293, 10): b"nordic identity root ca (simulated)",
    (4294967294, 6): b"device identity public key (simulated)",
}
# An unsigned COSE_Sign1 (tag 18, protected {1: -7}, {}, nil payload, empty signature): the
# simulator has no device identity key to sign with.
COSE_PLACEHOLDER = bytes.fromhex("d28443a10126a0f640")
# The modem keeps a client key's <passwd> with the key (its TLS stack needs it). The simulator
# stores it in flash under this type, committed together with the key, and never lists,
# reads or deletes it on its own.
PASSWD_TYPE = 0xF2

Store = object  # duck-typed: entries() / commit(changes)
Keygen = Callable[[str | None], tuple[bytes, bytes]]  # attributes → (key PEM, CSR DER)


class MemoryStore:
    """In-memory stand-in with the SlotStore interface (state lost on restart)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], bytes] = {}

    def entries(self) -> Mapping[tuple[int, int], bytes]:
        return dict(self._entries)

    def commit(self, changes: Mapping[tuple[int, int], bytes | None]) -> None:
        for key, value in changes.items():
            if value is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = value


@dataclass
class AtCmngOptions:
    imei: str = "352656100367872"
    firmware: str = "mfw_nrf91x1_2.0.2"
    model: str = "nRF9151-LACA"
    uuid: str = "50503041-3633-4261-803d-1e2b8f70111a"  # %KEYGEN's default CSR CN
    cfun: int = 0  # mode after boot; an application that connected at start leaves 1
    echo: bool = False  # the AT host does not echo; ATE1 turns a simulated echo on
    termination: str = "crlf"  # CONFIG_AT_HOST_TERMINATION: "cr", "lf", "crlf" or "null"
    crlf_invalid: bool = True  # mfw 2.0.2 field report: CRLF inside PEM → 527
    write_overwrites: bool = True  # NCS modem_key_mgmt_write: "Write or update"; False → 519
    capacity: int = 64 * 1024  # bytes of credential storage before 515
    pofwarn: bool = False  # an active %XPOFWARN power-off warning: writes refused with 528
    check_key_password: bool = True  # decrypt an encrypted client key with <passwd> (527 if not)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest().upper()


def split_params(text: str) -> list[tuple[str, bool]] | None:
    """AT parameters → [(value, quoted)]; None if a quote is left open."""
    params: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i <= n:
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                return None
            params.append((text[i + 1 : end], True))
            i = end + 1
            if i < n and text[i] != ",":
                return None
            i += 1
            continue
        end = text.find(",", i)
        end = n if end < 0 else end
        params.append((text[i:end].strip(), False))
        i = end + 1
    return params


class AtCmngModem:
    """The device side of the at-cmng dialect."""

    kind = "at-cmng"

    def __init__(
        self,
        store: Store | None = None,
        options: AtCmngOptions | None = None,
        keygen: Keygen | None = None,
    ) -> None:
        self.store = store if store is not None else MemoryStore()
        self.options = options or AtCmngOptions()
        self._keygen = keygen
        self._keygen_s = 0.0
        self._work = 0.0
        self.boot()

    def _commit(self, changes: Mapping[tuple[int, int], bytes | None]) -> bool:
        """Write to flash; False when the store's own limits refuse it (nothing changed)."""
        from provision.sim.store import StoreFull

        try:
            self.store.commit(changes)
        except StoreFull:
            return False
        return True

    # -- time, for the runner's line model (provision.sim.serve) ---------------------------
    def take_work_time(self) -> float:
        flash = getattr(self.store, "flash", None)
        work = self._work + (flash.take_busy() if flash is not None else 0.0)
        self._work = 0.0
        return work

    def idle(self) -> None:
        erase_spare = getattr(self.store, "erase_spare", None)
        if erase_spare is not None:
            erase_spare()

    # -- lifecycle ------------------------------------------------------------------------
    def boot(self) -> bytes:
        """Power on: volatile state back to defaults; flash (the store) kept."""
        self.cfun = self.options.cfun
        self.cmee = 0
        self.echo = self.options.echo
        self._buf = bytearray()
        self._inside_quotes = False
        self.dropped = 0
        return b""

    def power_cut(self) -> None:
        self.boot()

    # -- bytes in, bytes out --------------------------------------------------------------
    def receive_data(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            if self.echo:
                out.append(byte)
            if byte in (0x08, 0x7F):
                if self._buf:
                    self._buf.pop()
                continue
            if not self._inside_quotes and byte == 0x00 and self.options.termination != "null":
                continue  # at_host: "Ignored null; would terminate string early."
            if not self._inside_quotes and self._terminates(byte):
                out += self._send()
                continue
            if len(self._buf) + 1 > AT_BUF_SIZE - 1:
                self.dropped += 1  # at_host logs "Buffer overflow" and drops the byte
                continue
            self._buf.append(byte)
            if byte == 0x22:
                self._inside_quotes = not self._inside_quotes
        return bytes(out)

    def _terminates(self, byte: int) -> bool:
        term = self.options.termination
        if byte == 0x00:
            return term == "null"
        if byte == 0x0D:
            return term == "cr"
        if byte == 0x0A:
            return term == "lf" or (term == "crlf" and self._buf[-1:] == b"\r")
        return False

    def _send(self) -> bytes:
        raw = bytes(self._buf)
        self._buf.clear()
        self._inside_quotes = False
        if not any(b > 0x20 for b in raw):
            return b""
        text = raw.decode("latin-1").strip()
        lines, final = self.execute(text)
        body = "".join(f"{line}\r\n" for line in lines)
        return (body + final + "\r\n").encode("latin-1")

    # -- commands -------------------------------------------------------------------------
    def _error(self, code: int) -> tuple[list[str], str]:
        return [], (f"+CME ERROR: {code}" if self.cmee else "ERROR")

    def execute(self, text: str) -> tuple[list[str], str]:
        """One command line (without terminator) → (information lines, final result)."""
        upper = text.upper()
        if not upper.startswith("AT"):
            return [], "ERROR"
        body, ubody = text[2:], upper[2:]
        if ubody == "":
            return [], "OK"
        if ubody in ("E0", "E1"):
            self.echo = ubody == "E1"
            return [], "OK"
        if ubody.startswith("+CMEE"):
            return self._cmee(ubody[5:])
        if ubody.startswith("+CFUN"):
            return self._cfun(ubody[5:])
        if ubody in ("+CGSN", "+CGSN=0"):
            return [self.options.imei], "OK"
        if ubody == "+CGSN=1":
            return [f'+CGSN: "{self.options.imei}"'], "OK"
        if ubody == "+CGMR":
            return [self.options.firmware], "OK"
        if ubody == "+CGMM":
            return [self.options.model], "OK"
        if ubody == "+CGMI":
            return ["Nordic Semiconductor ASA"], "OK"
        if ubody.startswith("%CMNG="):
            return self._cmng(body[6:])
        if ubody.startswith("#XTLSCHECK="):
            return self._tlscheck(body[len("#XTLSCHECK=") :])
        if ubody.startswith("%KEYGEN="):
            return self._keygen_cmd(body[8:])
        return [], "ERROR"

    def _cmee(self, rest: str) -> tuple[list[str], str]:
        if rest == "?":
            return [f"+CMEE: {self.cmee}"], "OK"
        if rest in ("=0", "=1"):
            self.cmee = int(rest[1])
            return [], "OK"
        return [], "ERROR"

    def _cfun(self, rest: str) -> tuple[list[str], str]:
        if rest == "?":
            return [f"+CFUN: {self.cfun}"], "OK"
        match = re.fullmatch(r"=(\d+)", rest)
        if not match or int(match.group(1)) not in VALID_CFUN_MODES:
            return self._error(50)
        self.cfun = int(match.group(1))
        return [], "OK"

    def _entries(self) -> dict[tuple[int, int], bytes]:
        entries = dict(INTERNAL_ENTRIES)
        entries.update((k, v) for k, v in self.store.entries().items() if k[1] != PASSWD_TYPE)
        return entries

    def _cmng(self, args: str) -> tuple[list[str], str]:
        params = split_params(args)
        if not params or params[0][1] or not params[0][0].isdigit():
            return self._error(50)
        opcode = int(params[0][0])
        numbers: list[int] = []
        for value, quoted in params[1:3]:
            if quoted or not value.isdigit() or int(value) > MAX_TAG_VALUE:
                return self._error(50)
            numbers.append(int(value))
        if opcode == 1:
            return self._cmng_list(*numbers)
        if len(numbers) < 2:
            return self._error(50)
        sec_tag, cred_type = numbers
        if opcode == 0:
            return self._cmng_write(sec_tag, cred_type, params[3:])
        if len(params) != 3:
            return self._error(50)
        if opcode == 2:
            return self._cmng_read(sec_tag, cred_type)
        if opcode == 3:
            return self._cmng_delete(sec_tag, cred_type)
        return self._error(50)

    def _cmng_list(self, sec_tag: int | None = None, cred_type: int | None = None):
        lines = [
            f'%CMNG: {tag},{kind},"{_digest(data)}"'
            for (tag, kind), data in sorted(self._entries().items())
            if (sec_tag is None or tag == sec_tag) and (cred_type is None or kind == cred_type)
        ]
        return lines, "OK"

    def _refuse_change(self, sec_tag: int) -> int | None:
        if self.cfun in ACTIVE_CFUN_MODES:
            return 518
        if self.options.pofwarn:
            return 528
        if sec_tag > MAX_SEC_TAG:
            return 514
        return None

    def _cmng_write(self, sec_tag: int, cred_type: int, rest: list[tuple[str, bool]]):
        if not rest or not rest[0][1] or len(rest) > 2 or cred_type not in WRITABLE_TYPES:
            return self._error(50)
        refusal = self._refuse_change(sec_tag)
        if refusal is not None:
            return self._error(refusal)
        content = rest[0][0].encode("latin-1")
        passwd = rest[1][0] if len(rest) == 2 else None
        if not content or (passwd is not None and len(passwd) > 32):
            return self._error(50)
        if not self._valid_content(cred_type, content, passwd):
            return self._error(527)
        key = (sec_tag, cred_type)
        entries = self.store.entries()
        if key in entries and not self.options.write_overwrites:
            return self._error(519)
        used = sum(len(v) for k, v in entries.items() if k != key)
        if used + len(content) > self.options.capacity:
            return self._error(515)
        changes: dict[tuple[int, int], bytes | None] = {key: content}
        if cred_type == 2:
            changes[(sec_tag, PASSWD_TYPE)] = passwd.encode("latin-1") if passwd else None
        if not self._commit(changes):
            return self._error(515)
        return [], "OK"

    def _valid_content(self, cred_type: int, content: bytes, passwd: str | None) -> bool:
        if b"\r" in content and self.options.crlf_invalid:
            return False
        if cred_type in (0, 1, 2, 5):
            if b"-----BEGIN " not in content or b"-----END " not in content:
                return False
            if cred_type == 2 and b"ENCRYPTED PRIVATE KEY" in content and not passwd:
                return False
            encrypted = cred_type == 2 and b"ENCRYPTED PRIVATE KEY" in content
            if encrypted and passwd and self.options.check_key_password:
                return _decrypts(content, passwd.encode("latin-1"))
        if cred_type == 3:
            return len(content) % 2 == 0 and re.fullmatch(rb"[0-9A-Fa-f]+", content) is not None
        return True

    def _cmng_read(self, sec_tag: int, cred_type: int):
        data = self._entries().get((sec_tag, cred_type))
        if data is None:
            return self._error(513)
        if cred_type in UNREADABLE_TYPES:
            return self._error(514)
        text = data.decode("latin-1")
        return [f'%CMNG: {sec_tag},{cred_type},"{_digest(data)}","{text}"'], "OK"

    def _cmng_delete(self, sec_tag: int, cred_type: int):
        refusal = self._refuse_change(sec_tag)
        if refusal is not None:
            return self._error(refusal)
        if cred_type == PASSWD_TYPE or (sec_tag, cred_type) not in self.store.entries():
            return self._error(513)
        changes: dict[tuple[int, int], bytes | None] = {(sec_tag, cred_type): None}
        if cred_type == 2:
            changes[(sec_tag, PASSWD_TYPE)] = None
        self._commit(changes)
        return [], "OK"

    def _tlscheck(self, args: str) -> tuple[list[str], str]:
        """Simulator-only extension (docs/tls-check.md): a real mutual-TLS handshake with
        only this tag's %CMNG entries, answered with the report as one JSON line."""
        from provision.tls.device_side import at_tlscheck

        entries = self.store.entries()
        passwords = {tag: v for (tag, kind), v in entries.items() if kind == PASSWD_TYPE}
        result = at_tlscheck(entries, args, passwords)
        return self._error(50) if result is None else result

    def _keygen_cmd(self, args: str) -> tuple[list[str], str]:
        params = split_params(args)
        if not params or len(params) < 2 or any(quoted for _, quoted in params[:2]):
            return self._error(50)
        if not (params[0][0].isdigit() and params[1][0].isdigit()):
            return self._error(50)
        sec_tag, key_type = int(params[0][0]), int(params[1][0])
        response = 0
        attributes: str | None = None
        for value, quoted in params[2:]:
            if quoted:
                attributes = value
            elif value.isdigit() and response == 0 and attributes is None:
                response = int(value)
        if key_type != 2 or response not in (0, 1) or sec_tag > MAX_TAG_VALUE:
            return self._error(50)
        refusal = self._refuse_change(sec_tag)
        if refusal is not None:
            return self._error(refusal)
        try:
            if self._keygen is not None:
                key_pem, csr_der = self._keygen(attributes)
            else:
                key_pem, csr_der = _default_keygen(attributes, self.options.uuid)
            body = csr_der if response == 0 else _public_der(key_pem)
        except Exception:
            return self._error(523)
        entries = self.store.entries()
        used = sum(len(v) for k, v in entries.items() if k != (sec_tag, 2))
        if used + len(key_pem) > self.options.capacity:
            return self._error(515)
        self._work += self._keygen_s
        if not self._commit({(sec_tag, 2): key_pem, (sec_tag, PASSWD_TYPE): None}):
            return self._error(515)
        token = f"{_b64url(body)}.{_b64url(COSE_PLACEHOLDER)}"
        return [f'%KEYGEN: "{token}"'], "OK"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decrypts(content: bytes, password: bytes) -> bool:
    from provision.errors import InputError
    from provision.pki.keys import load_private_key

    try:
        load_private_key(content, password, "client_key")
    except InputError:
        return False
    return True


def _default_keygen(attributes: str | None, uuid: str) -> tuple[bytes, bytes]:
    from provision.pki.device_keygen import generate_key_and_csr

    return generate_key_and_csr(attributes, uuid)


def _public_der(key_pem: bytes) -> bytes:
    from provision.pki.keys import load_private_key, public_key_der

    return public_key_der(load_private_key(key_pem, None, "client_key"))


_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def options_from_strings(values: Mapping[str, str], cls: type, seed: int = 0) -> object:
    """Dataclass options from sim:// query strings; InputError names what is wrong."""
    from dataclasses import fields

    from provision.errors import InputError

    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, object] = {}
    for name, raw in values.items():
        f = known.get(name)
        if f is None:
            valid = ", ".join(known)
            raise InputError(f"unknown {cls.__name__} option {name!r} (valid: {valid})")
        kind = type(getattr(cls(), name))
        try:
            if kind is bool:
                kwargs[name] = _BOOL[raw.lower()]
            elif kind is int:
                kwargs[name] = int(raw)
            else:
                kwargs[name] = raw
        except (KeyError, ValueError):
            raise InputError(f"sim option {name}={raw!r} is not a valid {kind.__name__}") from None
    return cls(**kwargs)


def create(ctx) -> AtCmngModem:  # ctx: provision.sim.serve.SimContext
    """Factory for `sim://at-cmng?...` and `provision sim --dialect at-cmng`."""
    values = dict(ctx.options)
    if "imei" not in values:
        digits = int(hashlib.sha256(f"imei-{ctx.seed}".encode()).hexdigest(), 16) % 10**13
        values["imei"] = f"35{digits:013d}"
    options = options_from_strings(values, AtCmngOptions)
    modem = AtCmngModem(ctx.store, options)  # type: ignore[arg-type]
    modem._keygen_s = ctx.profile.keygen_ms / 1e3
    return modem
