"""A simulated nRF91 modem behind NCS's AT host: AT%CMNG, AT%KEYGEN, AT%ATTESTTOKEN,
AT%CERTEXPIRY, +CFUN, +CMEE, +CGSN.

Sans-IO: `receive_data(bytes) -> bytes` runs the byte-level state machine of
nRF Connect SDK lib/at_host/at_host.c (termination outside quotes only, backspace, a
4096-byte command buffer whose overflow is dropped without a word), then answers each command
the way Nordic's AT command reference documents. What the public sources leave open is a
constructor option (see docs/dialects.md for each choice).

Storage is a `store` with `entries() -> Mapping[(sec_tag, type), bytes]` and
`commit(changes)`, where a change maps a key to new bytes or None (delete).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from provision.sim.serve import SimContext

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
# The device identity (attestation) key signs %KEYGEN and %ATTESTTOKEN replies. A real modem
# holds it in its secure domain; the simulator keeps it in its flash under a type no %CMNG
# command reaches, made at first use, and lists its public key as the type 6 entry.
IDENTITY_TAG = 4294967294
IDENTITY_PUBLIC_TYPE = 6
ATTEST_KEY_TYPE = 0xF1
# The modem keeps a client key's <passwd> with the key (its TLS stack needs it). The simulator
# stores it in flash under this type, committed together with the key, and never lists,
# reads or deletes it on its own.
PASSWD_TYPE = 0xF2
HIDDEN_TYPES = frozenset({PASSWD_TYPE, ATTEST_KEY_TYPE})
DEFAULT_UUID = "50503041-3633-4261-803d-1e2b8f70111a"


class Store(Protocol):
    """What a simulated device keeps its credentials in: MemoryStore or the flash SlotStore."""

    def entries(self) -> Mapping[tuple[int, int], bytes]: ...

    def commit(self, changes: Mapping[tuple[int, int], bytes | None]) -> None: ...


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
    uuid: str = DEFAULT_UUID  # device UUID: %KEYGEN's default CSR CN, in every token
    cfun: int = 0  # mode after boot; an application that connected at start leaves 1
    echo: bool = False  # the AT host does not echo; ATE1 turns a simulated echo on
    termination: str = "crlf"  # CONFIG_AT_HOST_TERMINATION: "cr", "lf", "crlf" or "null"
    cmd_buff_size: int = AT_BUF_SIZE  # CONFIG_AT_HOST_CMD_MAX_LEN: overflow dropped silently
    # Off: content is stored byte for byte, CR LF included, as Nordic's production installer
    # (nrfcloud-utils) relies on. On: the one mfw 2.0.2 field report (CRLF PEM → 527).
    crlf_invalid: bool = False
    write_overwrites: bool = True  # NCS modem_key_mgmt_write: "Write or update"; False → 519
    capacity: int = 64 * 1024  # bytes of credential storage before 515
    pofwarn: bool = False  # an active %XPOFWARN power-off warning: writes refused with 528
    check_key_password: bool = True  # decrypt an encrypted client key with <passwd> (527 if not)
    # %KEYGEN's time in the modem's own firmware (its CryptoCell, not the application MCU the
    # device profiles' measured keygen_ms model): no Nordic source states one; modelled.
    keygen_ms: int = 150


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
        self._keygen_s = self.options.keygen_ms / 1e3
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
            if len(self._buf) + 1 > self.options.cmd_buff_size - 1:
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
        if ubody == "%ATTESTTOKEN" or ubody.startswith("%ATTESTTOKEN="):
            return self._attesttoken(body[len("%ATTESTTOKEN") :])
        if ubody.startswith("%CERTEXPIRY="):
            return self._certexpiry(body[len("%CERTEXPIRY=") :])
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
        stored = self.store.entries()
        key = stored.get((IDENTITY_TAG, ATTEST_KEY_TYPE))
        if key is not None:
            from provision.pki.es256 import public_pem

            entries[(IDENTITY_TAG, IDENTITY_PUBLIC_TYPE)] = public_pem(key)
        entries.update((k, v) for k, v in stored.items() if k[1] not in HIDDEN_TYPES)
        return entries

    def _used(self, entries: Mapping[tuple[int, int], bytes], but: tuple[int, int]) -> int:
        """Bytes of user credentials (what `capacity` limits), `but` one key."""
        return sum(len(v) for k, v in entries.items() if k != but and k[1] != ATTEST_KEY_TYPE)

    def _identity_key(self) -> tuple[bytes, dict[tuple[int, int], bytes | None]]:
        """(the attestation key PEM, the flash change that creates it if it is new)."""
        key = self.store.entries().get((IDENTITY_TAG, ATTEST_KEY_TYPE))
        if key is not None:
            return key, {}
        from provision.pki.es256 import generate_pem

        key = generate_pem()
        return key, {(IDENTITY_TAG, ATTEST_KEY_TYPE): key}

    def _sign(self, key_pem: bytes) -> Callable[[bytes], bytes]:
        from provision.pki.es256 import sign

        return lambda data: sign(key_pem, data)

    def _cmng(self, args: str) -> tuple[list[str], str]:
        params = split_params(args)
        if not params or params[0][1] or not params[0][0].isdecimal():
            return self._error(50)
        opcode = int(params[0][0])
        numbers: list[int] = []
        for value, quoted in params[1:3]:
            if quoted or not value.isdecimal() or int(value) > MAX_TAG_VALUE:
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

    def _cmng_list(
        self, sec_tag: int | None = None, cred_type: int | None = None
    ) -> tuple[list[str], str]:
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

    def _cmng_write(
        self, sec_tag: int, cred_type: int, rest: list[tuple[str, bool]]
    ) -> tuple[list[str], str]:
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
        if self._used(entries, key) + len(content) > self.options.capacity:
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

    def _cmng_read(self, sec_tag: int, cred_type: int) -> tuple[list[str], str]:
        data = self._entries().get((sec_tag, cred_type))
        if data is None:
            return self._error(513)
        if cred_type in UNREADABLE_TYPES:
            return self._error(514)
        text = data.decode("latin-1")
        return [f'%CMNG: {sec_tag},{cred_type},"{_digest(data)}","{text}"'], "OK"

    def _cmng_delete(self, sec_tag: int, cred_type: int) -> tuple[list[str], str]:
        refusal = self._refuse_change(sec_tag)
        if refusal is not None:
            return self._error(refusal)
        if cred_type in HIDDEN_TYPES or (sec_tag, cred_type) not in self.store.entries():
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
        if not (params[0][0].isdecimal() and params[1][0].isdecimal()):
            return self._error(50)
        sec_tag, key_type = int(params[0][0]), int(params[1][0])
        response = 0
        attributes: str | None = None
        for value, quoted in params[2:]:
            if quoted:
                attributes = value
            elif value.isdecimal() and response == 0 and attributes is None:
                response = int(value)
        if key_type != 2 or response not in (0, 1) or sec_tag > MAX_TAG_VALUE:
            return self._error(50)
        refusal = self._refuse_change(sec_tag)
        if refusal is not None:
            return self._error(refusal)
        from provision.dialects import nrf_attestation as att

        try:
            if self._keygen is not None:
                key_pem, csr_der = self._keygen(attributes)
            else:
                key_pem, csr_der = _default_keygen(attributes, self.options.uuid)
            body = csr_der if response == 0 else _public_der(key_pem)
        except Exception:
            return self._error(523)
        entries = self.store.entries()
        if self._used(entries, (sec_tag, 2)) + len(key_pem) > self.options.capacity:
            return self._error(515)
        identity_key, changes = self._identity_key()
        message_type = att.MSG_CSR if response == 0 else att.MSG_PUBLIC_KEY
        payload = att.keygen_payload(
            message_type, self.options.uuid, sec_tag, body, os.urandom(att.NONCE_SIZE)
        )
        cose = att.cose_sign1(payload, self._sign(identity_key))
        self._work += self._keygen_s
        changes.update({(sec_tag, 2): key_pem, (sec_tag, PASSWD_TYPE): None})
        if not self._commit(changes):
            return self._error(515)
        return [f'%KEYGEN: "{att.b64url(body)}.{att.b64url(cose)}"'], "OK"

    def _attesttoken(self, rest: str) -> tuple[list[str], str]:
        """%ATTESTTOKEN[=<challenge>]: the device identity message, signed (detached)."""
        from provision.dialects import nrf_attestation as att

        nonce = os.urandom(att.NONCE_SIZE)
        if rest:
            params = split_params(rest[1:]) if rest.startswith("=") else None
            if not params or len(params) != 1:
                return self._error(50)
            challenge = params[0][0]
            if not re.fullmatch(r"[0-9A-Fa-f]{32}", challenge):
                return self._error(50)
            nonce = bytes.fromhex(challenge)
        identity_key, changes = self._identity_key()
        if changes and not self._commit(changes):
            return self._error(515)
        message = att.identity_message(
            self.options.uuid,
            att.device_type_for(self.options.model),
            _firmware_uuid(self.options.firmware),
            nonce,
        )
        cose = att.cose_sign1(None, self._sign(identity_key), detached=message)
        return [f'%ATTESTTOKEN: "{att.b64url(message)}.{att.b64url(cose)}"'], "OK"

    def _certexpiry(self, args: str) -> tuple[list[str], str]:
        """%CERTEXPIRY=<sec_tag>,<type>: serial, notBefore, notAfter of a stored certificate."""
        params = split_params(args)
        if not params or len(params) != 2 or any(quoted for _, quoted in params):
            return self._error(50)
        if not all(value.isdecimal() for value, _ in params):
            return self._error(50)
        sec_tag, cred_type = (int(value) for value, _ in params)
        if cred_type not in (0, 1, 10):
            return self._error(50)
        data = self._entries().get((sec_tag, cred_type))
        if data is None:
            return self._error(513)
        from provision.errors import InputError
        from provision.pki.certs import load_certificates

        try:
            cert = load_certificates(data, f"sec_tag {sec_tag}")[0]
        except (InputError, IndexError):
            return self._error(527)
        serial = format(cert.serial_number, "X")
        serial = serial.zfill(len(serial) + len(serial) % 2)
        stamp = "%Y%m%d%H%M%SZ"
        not_before = cert.not_valid_before_utc.strftime(stamp)
        not_after = cert.not_valid_after_utc.strftime(stamp)
        return [f"%CERTEXPIRY: {serial},{not_before},{not_after}"], "OK"


def _firmware_uuid(firmware: str) -> str:
    """A stable firmware UUID per firmware version string (a real modem reports its build's)."""
    import uuid

    return str(uuid.UUID(bytes=hashlib.sha256(f"fw-{firmware}".encode()).digest()[:16]))


def derive_uuid(basis: str) -> str:
    """A version-4-shaped device UUID from a seed or uid, so simulated devices differ."""
    import uuid

    return str(uuid.UUID(bytes=hashlib.sha256(f"uuid-{basis}".encode()).digest()[:16], version=4))


def derive_imei(basis: str) -> str:
    digits = int(hashlib.sha256(f"imei-{basis}".encode()).hexdigest(), 16) % 10**13
    return f"35{digits:013d}"


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


_Options = TypeVar("_Options", bound="DataclassInstance")
_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def options_from_strings(values: Mapping[str, str], cls: type[_Options], seed: int = 0) -> _Options:
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
                number = int(raw)
                if number < 0:  # sizes, counts, modes: never negative
                    raise ValueError
                kwargs[name] = number
            else:
                kwargs[name] = raw
        except (KeyError, ValueError):
            raise InputError(f"sim option {name}={raw!r} is not a valid {kind.__name__}") from None
    return cls(**kwargs)


def describe_options(cls: type) -> dict[str, str]:
    """A device options dataclass as sim option descriptions (the table `provision sim` and
    sim:// URLs share)."""
    from dataclasses import fields

    return {f.name: f"default {f.default!r}" for f in fields(cls)}


UID_OPTION = {"uid": "device id the IMEI and UUID derive from (default: the seed)"}
OPTIONS = {**describe_options(AtCmngOptions), **UID_OPTION}
OPTIONS["uuid"] = "device UUID (default: derived from uid or seed)"
OPTIONS["imei"] = "IMEI, 15 digits (default: derived from uid or seed)"


def identity_defaults(values: dict[str, str], seed: int) -> dict[str, str]:
    """`imei` and `uuid` derived from the sim's `uid` (when given) or its seed, unless set:
    every simulated modem has its own, as every real one does."""
    uid = values.pop("uid", None)
    if uid is not None and not uid:
        from provision.errors import InputError

        raise InputError("sim option uid is empty")
    values.setdefault("imei", derive_imei(f"uid-{uid}" if uid else str(seed)))
    values.setdefault("uuid", derive_uuid(f"uid-{uid}" if uid else f"seed-{seed}"))
    return values


def check_modem_options(options: AtCmngOptions) -> None:
    import uuid

    from provision.errors import InputError

    try:
        uuid.UUID(options.uuid)
    except ValueError:
        raise InputError(f"sim option uuid={options.uuid!r} is not a UUID") from None
    if not re.fullmatch(r"\d{15}", options.imei):
        raise InputError(f"sim option imei={options.imei!r} is not 15 digits")
    if options.termination not in ("cr", "lf", "crlf", "null"):
        raise InputError(f"sim option termination={options.termination!r}: cr, lf, crlf or null")
    if options.cmd_buff_size < 16 or options.capacity < 0:
        raise InputError("sim options cmd_buff_size (at least 16) and capacity must fit a command")


def create(ctx: SimContext) -> AtCmngModem:
    """Factory for `sim://at-cmng?...` and `provision sim --dialect at-cmng`."""
    values = identity_defaults(dict(ctx.options), ctx.seed)
    options = options_from_strings(values, AtCmngOptions)
    check_modem_options(options)
    return AtCmngModem(ctx.store, options)
