"""The `at-cmng` dialect: Nordic nRF91 modems over their AT interface (AT%CMNG, AT%KEYGEN).

Two halves. The sans-IO half (`encode_*`, `parse_*`, `plan_write`, `ReplyReader`) turns
operations into command bytes and reply bytes into values; it never touches a port or a
clock. `AtCmngSession` is the drive loop: it writes commands to a Transport, feeds what comes
back into a ReplyReader and owns the timeouts and retries.

Sources (see docs/dialects.md): Nordic's AT command reference (%CMNG, %KEYGEN, +CFUN, +CMEE,
+CGSN, +CGMR), nRF Connect SDK lib/modem_key_mgmt/modem_key_mgmt.c and lib/at_host/at_host.c.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import difflib
import hashlib
import re
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from provision.bundle.model import MAX_SEC_TAG, CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.dialects import TARGETS
from provision.dialects.base import (
    Capability,
    DeviceInfo,
    DialectProfile,
    Holdings,
    Progress,
    Refusal,
    SentBytes,
    SlotInfo,
    SlotKey,
    WriteResult,
    WritesDecodedBundles,
)
from provision.dialects.drive import Garbled, retried
from provision.dialects.lines import drain, now, read_until
from provision.errors import (
    DeviceError,
    LinkError,
    PolicyError,
    ProvisionError,
    StoreFull,
    VerifyFailed,
)
from provision.slot_view import digest_is_secret
from provision.trace import LineSplitter, TraceLog, env_enabled, redact_base64_runs
from provision.transport.base import Transport, send

if TYPE_CHECKING:
    from provision.dialects import nrf_attestation

NAME = "at-cmng"
T = TypeVar("T")
# at_host keeps the command in a 4096-byte buffer with room for the NUL and, in CR+LF
# termination mode, the CR: longer commands lose their tail silently (no reply at all).
MAX_COMMAND_CHARS = 4094
MAX_PASSWD_CHARS = 32
TERMINATOR = b"\r\n"
# Closes a double quote left open by a cut command, and ends that line.
RESYNC = b'"' + TERMINATOR
# The longest reply line read: a %CMNG read of a full-size entry (the modem's AT buffer).
MAX_REPLY_LINE = 2 * 4096
# +CFUN modes in which the modem refuses %CMNG write/delete and %KEYGEN with 518.
ACTIVE_CFUN_MODES = frozenset({1, 2, 21})
OFFLINE_CFUN_MODE = 4


class NrfType(IntEnum):
    """%CMNG <type> values."""

    ROOT_CA = 0
    CLIENT_CERT = 1
    CLIENT_KEY = 2
    PSK = 3
    PSK_IDENTITY = 4
    PUBLIC_KEY = 5
    DEVICE_IDENTITY_PUBLIC_KEY = 6
    RESERVED = 7
    ENDORSEMENT_KEY = 8
    OWNERSHIP_KEY = 9
    NORDIC_IDENTITY_ROOT_CA = 10
    NORDIC_BASE_PUBLIC_KEY = 11


SLOT_TO_NRF: dict[SlotType, NrfType] = {
    SlotType.ROOT_CA: NrfType.ROOT_CA,
    SlotType.CLIENT_CERT: NrfType.CLIENT_CERT,
    SlotType.CLIENT_KEY: NrfType.CLIENT_KEY,
    SlotType.PSK: NrfType.PSK,
    SlotType.PSK_IDENTITY: NrfType.PSK_IDENTITY,
}
NRF_TO_SLOT: dict[int, SlotType] = {int(v): k for k, v in SLOT_TO_NRF.items()}

# Every +CME ERROR code Nordic documents for the commands this dialect sends.
CME_ERRORS: dict[int, str] = {
    0: "phone failure",
    3: "operation not allowed",
    4: "operation not supported",
    23: "memory failure",
    50: "incorrect parameters",
    51: "command disabled in this modem firmware",
    60: "system error",
    513: "not found",
    514: "no access (reserved sec_tag, or a key that cannot be read back)",
    515: "memory full: the modem's credential storage has no room left",
    518: "not allowed in active state (the modem must be offline: AT+CFUN=4)",
    519: "already exists",
    520: "authentication failed",
    523: "key generation failed",
    527: "invalid content (the modem rejected the credential; CRLF line endings cause this)",
    528: "not allowed while a power-off warning is active",
}


CME_NOT_FOUND = 513
CME_MEMORY_FULL = 515
# Replies that, to a command we built and checked, point at corruption on the line.
CORRUPTION_HINTS = frozenset({None, 50, 527})


def line_garbled(cme: int | None) -> bool:
    """Whether an error reply to a command we built and checked points at the line, not the
    modem: a corruption hint, or a code the modem does not have (`+CME ERROR: 5113` is a
    513 with a byte duplicated; make soak, at-cmng seed 8593)."""
    return cme in CORRUPTION_HINTS or cme not in CME_ERRORS


def cme_message(code: int) -> str:
    return CME_ERRORS.get(code, "undocumented error code")


# ---------------------------------------------------------------------------------------------
# Stored forms: exactly the bytes the modem keeps, which its SHA-256 covers.


def pem_lf(data: bytes) -> bytes:
    """PEM with LF line endings and one final LF: accepted by every firmware (one mfw 2.0.2
    report refused CR LF with 527, which production modems store as sent)."""
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip(b"\n")
    return text + b"\n"


def slot_pem(slot: Slot) -> bytes:
    """A certificate or key slot as LF-only PEM (DER bundles are converted: PEM on the wire)."""
    if slot.encoding is Encoding.PEM:
        return pem_lf(slot.data)
    from provision.pki.certs import to_pem
    from provision.pki.keys import load_private_key, serialize_private_key
    from provision.pki.pem import pem_armor

    where = f"sec_tag {slot.sec_tag} {slot.type.label}"
    if slot.type.is_certificate:
        return to_pem(slot.data, where)
    if slot.flags & SlotFlags.ENCRYPTED:
        # Re-encoding would need the password; PEM armor of the PKCS#8 DER is the same key.
        return pem_armor("ENCRYPTED PRIVATE KEY", slot.data)
    return serialize_private_key(load_private_key(slot.data, None, where), encoding="pem")


def slot_content(slot: Slot) -> bytes:
    """The bytes of one slot as %CMNG stores them."""
    if slot.type in (SlotType.ROOT_CA, SlotType.CLIENT_CERT, SlotType.CLIENT_KEY):
        return slot_pem(slot)
    if slot.type is SlotType.PSK:
        # The modem takes a PSK as a hex string and stores that string.
        return slot.data.hex().encode()
    if slot.type is SlotType.PSK_IDENTITY:
        return slot.data
    raise PolicyError(f"at-cmng cannot store a {slot.type.label} slot", code="slot.unsupported")


@dataclass(frozen=True)
class PlannedWrite:
    """One AT%CMNG=0 command: what it stores and which bundle slots it carries."""

    sec_tag: int
    nrf_type: NrfType
    content: bytes = field(repr=False)
    passwd: bytes | None = field(default=None, repr=False)

    @property
    def slot_type(self) -> SlotType:
        return NRF_TO_SLOT[int(self.nrf_type)]

    @property
    def where(self) -> str:
        return f"sec_tag {self.sec_tag} {self.slot_type.label}"


def plan_entries(credentials: CredentialSet) -> tuple[list[PlannedWrite], list[Refusal]]:
    """The %CMNG writes for a set, and what the modem would refuse or lose of them.

    Several root_ca slots in one tag become one type-0 entry holding the PEM certificates one
    after another (the modem keeps one entry per (sec_tag, type); its TLS stack reads a chain).
    A key_password slot is no entry of its own: it is the <passwd> of the tag's client_key.
    Line ends are normalised to LF (slot_pem), so a CRLF PEM is no refusal.
    """
    plans: list[PlannedWrite] = []
    refusals: list[Refusal] = []
    for sec_tag in credentials.sec_tags:
        slots = credentials.in_tag(sec_tag)
        password = next((s for s in slots if s.type is SlotType.KEY_PASSWORD), None)
        key = next((s for s in slots if s.type is SlotType.CLIENT_KEY), None)
        if password is not None and (key is None or not key.flags & SlotFlags.ENCRYPTED):
            refusals.append(
                Refusal(
                    "key.password_unused",
                    f"sec_tag {sec_tag}: key_password given but no encrypted client_key in the tag",
                    sec_tag,
                    SlotType.KEY_PASSWORD,
                )
            )
        if key is not None and key.flags & SlotFlags.ENCRYPTED and password is None:
            refusals.append(
                Refusal(
                    "key.password_missing",
                    f"sec_tag {sec_tag}: the client_key is encrypted and the tag has no "
                    "key_password",
                    sec_tag,
                    SlotType.CLIENT_KEY,
                )
            )
        roots = [s for s in slots if s.type is SlotType.ROOT_CA]
        if roots:
            chain = b"".join(slot_content(s) for s in roots)
            plans.append(PlannedWrite(sec_tag, NrfType.ROOT_CA, chain))
        for slot in slots:
            if slot.type in (SlotType.ROOT_CA, SlotType.KEY_PASSWORD):
                continue
            passwd = password.data if slot.type is SlotType.CLIENT_KEY and password else None
            plans.append(PlannedWrite(sec_tag, SLOT_TO_NRF[slot.type], slot_content(slot), passwd))
    for plan in plans:
        refusals.extend(_plan_refusals(plan))
    return plans, refusals


def plan_write(credentials: CredentialSet) -> list[PlannedWrite]:
    """The %CMNG writes for a set, or PolicyError before anything is sent."""
    plans, refusals = plan_entries(credentials)
    if refusals:
        raise PolicyError(refusals[0].message, code=refusals[0].code)
    return plans


def _plan_refusals(plan: PlannedWrite) -> list[Refusal]:
    out: list[Refusal] = []

    def refuse(code: str, message: str) -> None:
        out.append(Refusal(code, message, plan.sec_tag, plan.slot_type))

    if not plan.content:
        refuse("content.empty", f"{plan.where}: empty content")
    if b'"' in plan.content:
        refuse(
            "content.unsupported",
            f"{plan.where}: content contains a double quote, which %CMNG cannot carry",
        )
    if not plan.content.isascii():
        refuse(
            "content.unsupported",
            f"{plan.where}: content is not ASCII text, which %CMNG cannot carry",
        )
    if plan.passwd is not None:
        if len(plan.passwd) > MAX_PASSWD_CHARS:
            refuse(
                "key.password_too_long",
                f"sec_tag {plan.sec_tag}: key_password is {len(plan.passwd)} characters; the "
                f"modem takes at most {MAX_PASSWD_CHARS}",
            )
        if b'"' in plan.passwd or not plan.passwd.isascii() or b"\n" in plan.passwd:
            refuse(
                "key.password_unsupported",
                f"sec_tag {plan.sec_tag}: key_password must be ASCII without quotes or newlines",
            )
    size = command_size(plan)
    if size > MAX_COMMAND_CHARS:
        refuse(
            "size.too_large",
            f"{plan.where}: the AT%CMNG command would be {size} bytes; the modem's AT buffer "
            f"takes {MAX_COMMAND_CHARS} and silently drops the rest",
        )
    return out


def command_size(plan: PlannedWrite) -> int:
    """Characters of the AT%CMNG=0 command for `plan`, without its terminator: what has to
    fit the modem's AT buffer."""
    return len(encode_write(plan)) - len(TERMINATOR)


def _refusals(credentials: CredentialSet) -> list[Refusal]:
    try:
        return plan_entries(credentials)[1]
    except ProvisionError:
        return []  # unreadable content: the check reports it where it parses the item


def _stored_forms(credentials: CredentialSet) -> dict[tuple[int, SlotType], bytes]:
    return {(p.sec_tag, p.slot_type): p.content for p in plan_entries(credentials)[0]}


# %CMNG has no transaction and no way to rename a sec_tag, so a staging tag could not be
# switched in: the best a host can do is order its commands. Every entry a write replaces is
# deleted before the first new one is written; a cut therefore stops in the deleting phase
# (old entries, some missing) or the writing phase (new entries, some missing), and the one
# state a device could not tell from a complete set — old and new entries side by side in
# one tag — never exists. (Writing the key last, or the root last, would still leave a new
# root beside an old key: each order has such a cut point.)
NO_MIX_GUARANTEE = (
    "not atomic: the entries a write replaces are deleted before the new ones are written, "
    "so a cut leaves the old set, the new set, or an incomplete set (slots missing), never "
    "old and new slots together"
)

PROFILE = DialectProfile(
    dialect=NAME,
    target=TARGETS[NAME],
    description="nRF91 modem via AT%CMNG (one AT command per item, LF-only PEM)",
    slot_types=frozenset(SlotType),
    capabilities=frozenset(
        {Capability.KEYGEN, Capability.READ_BACK, Capability.ENCRYPTED_KEYS, Capability.ATTESTATION}
    ),
    refusals=_refusals,
    stored_forms=_stored_forms,
    encodings="PEM with LF line ends (DER items converted); PSK as hex text",
    # A server certificate chain above 4 kB crashed the modem (field report).
    server_chain_limit=4096,
    guarantee=NO_MIX_GUARANTEE,
)


# ---------------------------------------------------------------------------------------------
# Commands


def command(text: str) -> bytes:
    return text.encode("ascii") + TERMINATOR


def encode_write(plan: PlannedWrite) -> bytes:
    head = f"AT%CMNG=0,{plan.sec_tag},{int(plan.nrf_type)},".encode()
    tail = b"," + b'"' + plan.passwd + b'"' if plan.passwd is not None else b""
    return head + b'"' + plan.content + b'"' + tail + TERMINATOR


def encode_list(sec_tag: int | None = None, nrf_type: int | None = None) -> bytes:
    if sec_tag is None:
        return command("AT%CMNG=1")
    if nrf_type is None:
        return command(f"AT%CMNG=1,{sec_tag}")
    return command(f"AT%CMNG=1,{sec_tag},{nrf_type}")


def encode_read(sec_tag: int, nrf_type: int) -> bytes:
    return command(f"AT%CMNG=2,{sec_tag},{nrf_type}")


def encode_delete(sec_tag: int, nrf_type: int) -> bytes:
    return command(f"AT%CMNG=3,{sec_tag},{nrf_type}")


def keygen_attributes(subject: str | None) -> str | None:
    """%KEYGEN <attributes>: "CN=..." style; a bare name becomes the common name."""
    if subject is None:
        return None
    if '"' in subject or not subject.isascii() or "\n" in subject:
        raise PolicyError(
            "keygen subject must be ASCII without quotes or newlines", code="keygen.subject"
        )
    return subject if "=" in subject else f"CN={subject}"


def encode_keygen(sec_tag: int, subject: str | None = None) -> bytes:
    attrs = keygen_attributes(subject)
    # key_type 2 (client key), response 0 (CSR).
    base = f"AT%KEYGEN={sec_tag},2,0"
    return command(base if attrs is None else f'{base},"{attrs}"')


# ---------------------------------------------------------------------------------------------
# What a line means, for --trace (secrets redacted)

# Types whose content is public: certificates and the PSK identity. Anything else written
# (client_key, PSK, any other key) shows as its size only.
_PUBLIC_NRF = frozenset({int(NrfType.ROOT_CA), int(NrfType.CLIENT_CERT), int(NrfType.PSK_IDENTITY)})
_CMNG_WRITE = re.compile(r'^AT%CMNG=0,(\d+),(\d+),"')
_CMNG_OTHER = re.compile(r"^AT%CMNG=([123])(?:,(\d+))?(?:,(\d+))?$")
_CFUN_NAMES = {0: "power off", 1: "online", 4: "offline (flight mode)"}


def _nrf_label(nrf_type: int) -> str:
    slot = NRF_TO_SLOT.get(nrf_type)
    if slot is not None:
        return slot.label
    try:
        return NrfType(nrf_type).name.lower()
    except ValueError:
        return f"type {nrf_type}"


def trace_command(data: bytes) -> tuple[str, str, list[bytes]]:
    """One command as sent → (text to show, meaning, secrets). The quoted content of a
    client_key or PSK write and any passwd show as their size; `secrets` are the pieces the
    trace must also scrub from what comes back (a modem with echo on repeats the line)."""
    text = data.decode("latin-1").removesuffix(TERMINATOR.decode())
    write = _CMNG_WRITE.match(text)
    if write is not None:
        write_tag, write_nrf = int(write[1]), int(write[2])
        rest = text[write.end() :]
        end = rest.find('"')
        content, after = (rest, "") if end < 0 else (rest[:end], rest[end + 1 :])
        secrets: list[bytes] = []
        shown = text[: write.end()]
        if write_nrf in _PUBLIC_NRF:
            shown += content
        else:
            shown += f"<{len(content)} bytes redacted>"
            pem_lines = content.split("\n")
            secrets += [ln.encode("latin-1") for ln in pem_lines if not ln.startswith("-----")]
        shown += '"' if end >= 0 else ""
        meaning = f"write {_nrf_label(write_nrf)} to sec_tag {write_tag}"
        if after:
            passwd = after.removeprefix(',"').removesuffix('"')
            secrets.append(passwd.encode("latin-1"))
            shown += ',"<passwd redacted>"'
            meaning += " (with its key password)"
        return shown, meaning, [s for s in secrets if s]
    other = _CMNG_OTHER.match(text)
    if other is not None:
        op, tag, nrf = other[1], other[2], other[3]
        what = _nrf_label(int(nrf)) if nrf is not None else "credentials"
        where = f" of sec_tag {tag}" if tag is not None else ""
        verb = {"1": "list", "2": "read", "3": "delete"}[op]
        return text, f"{verb} {what}{where}", []
    if text.startswith("AT+CFUN="):
        mode = text.removeprefix("AT+CFUN=")
        name = _CFUN_NAMES.get(int(mode), f"mode {mode}") if mode.isdecimal() else mode
        return text, f"functional mode: {name}", []
    if text.startswith("AT%KEYGEN="):
        tag = text.removeprefix("AT%KEYGEN=").split(",")[0]
        return text, f"generate a client_key in sec_tag {tag}, answer with a CSR", []
    meanings = {
        "AT": "attention",
        "AT+CMEE=1": "report errors as +CME ERROR codes",
        "AT+CFUN?": "read the functional mode",
        "AT+CGSN=1": "read the IMEI",
        "AT+CGMR": "read the firmware version",
        "AT+CGMM": "read the model",
    }
    return text, meanings.get(text, ""), []


_ECHOED_PASSWD = re.compile(r'","[^"]*"?$')


def trace_reply(text: str) -> tuple[str, str]:
    """One received line → (text to show, meaning). A line with a quoted second argument
    can only be the echo of a write with a passwd: the passwd is redacted."""
    text = _ECHOED_PASSWD.sub('","<passwd redacted>"', text)
    if text.startswith("AT%CMNG=0,"):
        text = trace_command(text.encode("latin-1"))[0]
    if text == FINAL_OK:
        return text, "success"
    if text == "ERROR":
        return text, "error"
    cme = _CME.match(text)
    if cme is not None:
        return text, cme_message(int(cme[1]))
    listed = re.match(r"^%CMNG: ?(\d+), ?(\d+)", text)
    if listed is not None:
        slot = NRF_TO_SLOT.get(int(listed[2]))
        if slot is not None and digest_is_secret(slot):  # provision.slot_view
            text = re.sub(r'"[0-9A-Fa-f]{64}"', '"<secret digest not shown>"', text)
        return text, f"{_nrf_label(int(listed[2]))} in sec_tag {listed[1]}"
    if text.startswith("+CFUN:"):
        return text, "functional mode"
    return text, ""


# ---------------------------------------------------------------------------------------------
# Replies

FINAL_OK = "OK"
_CME = re.compile(r"^\+CME ERROR: ?(\d+)$")


@dataclass(frozen=True)
class Reply:
    lines: tuple[str, ...]  # information lines with the wanted prefix, in order
    ok: bool
    cme: int | None = None  # +CME ERROR code; None with ok=False means a plain ERROR
    # Lines that look like a wanted line whose prefix the line garbled (`%CLNG: 42,1,…`):
    # dropping one silently would make a listing short, and two listings short of the same
    # entry would agree on a slot the modem holds (make soak, at-shell seed 3736).
    near_misses: int = 0


class ReplyReader:
    """Collect one command's reply from bytes fed in any split.

    Keeps information lines that start with `prefix` (all non-empty lines when prefix is "");
    drops the command's echo, unsolicited result codes and noise. A `%CMNG:` read reply
    carries PEM with line breaks inside quotes, so line ends inside quotes do not end it.
    """

    def __init__(self, sent: bytes, prefix: str | None, max_line: int = MAX_REPLY_LINE) -> None:
        self._echo = sent.rstrip(b"\r\n").decode("latin-1")
        self._prefix = prefix
        self._max_line = max_line
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already looked at for a line end
        self._in_quotes = False
        self._lines: list[str] = []
        self.ignored = 0
        self.near_misses = 0
        self.overflows = 0  # lines longer than max_line, dropped

    def feed(self, data: bytes) -> Reply | None:
        """Add bytes; return the reply once its final line is in. Bytes after it stay
        buffered: feed(b"") returns the next reply if it is already complete."""
        self._buf += data
        while True:
            line = self._next_line()
            if line is None:
                return None
            reply = self._take(line)
            if reply is not None:
                self._lines = []
                return reply

    def _next_line(self) -> str | None:
        """The next complete line, scanning each byte once; a line longer than max_line is
        dropped as it grows (noise, or a device that never ends its line)."""
        buf = self._buf
        quoted_reply = buf.lstrip(b"\r\n").startswith((b"%CMNG:", b"%KEYGEN:"))
        for i in range(self._scanned, len(buf)):
            byte = buf[i]
            if byte == 0x22 and quoted_reply:
                self._in_quotes = not self._in_quotes
            elif byte in (0x0D, 0x0A) and not self._in_quotes:
                line = bytes(buf[:i]).decode("latin-1")
                del buf[: i + 1]
                self._scanned = 0
                return line
        self._scanned = len(buf)
        if len(buf) > self._max_line:
            self.overflows += 1
            buf.clear()
            self._scanned = 0
            self._in_quotes = False
        return None

    def _take(self, line: str) -> Reply | None:
        text = line.strip("\r\n")
        stripped = text.strip()
        if not stripped:
            return None
        lines, near = tuple(self._lines), self.near_misses
        if stripped == FINAL_OK:
            return Reply(lines, True, near_misses=near)
        if stripped == "ERROR":
            return Reply(lines, False, near_misses=near)
        match = _CME.match(stripped)
        if match:
            return Reply(lines, False, int(match.group(1)), near_misses=near)
        if stripped == self._echo:
            return None
        if self._prefix is not None and stripped.startswith(self._prefix):
            self._lines.append(text)
        else:
            self.ignored += 1
            if self._prefix and near_miss(stripped, self._prefix):
                self.near_misses += 1
        return None


def near_miss(line: str, prefix: str) -> bool:
    """Whether `line` may be a `prefix` line the line garbled: its head differs from the
    prefix in a byte or two, or the prefix's name appears later in it. A garbled echo of
    the command (`AT%CMNF=1`) is not one: it carries no entry."""
    if line.startswith("AT"):
        return False
    head = line[: len(prefix)]
    if difflib.SequenceMatcher(None, head, prefix).ratio() >= NEAR_MISS_RATIO:
        return True
    name = prefix.strip("%+:# ")
    return bool(name) and name in line


# Of a 6-character prefix, four still in place: two bytes flipped, dropped or duplicated.
NEAR_MISS_RATIO = 0.66


# A whole line, so that two entries a lost line end ran together, or a digest with a
# garbled character, are garbled replies and not an entry read as something else.
_ENTRY_HEAD = r'%CMNG: ?(\d+), ?(\d+)(?:, ?"([0-9A-Fa-f]{64})")?'
_LIST_LINE = re.compile(_ENTRY_HEAD + r"\s*$")
_READ_LINE = re.compile(_ENTRY_HEAD + r', ?"([^"]*)"\s*$')


@dataclass(frozen=True)
class CmngEntry:
    sec_tag: int
    nrf_type: int
    sha256: bytes | None


def _entry(match: re.Match[str]) -> CmngEntry:
    sha = match.group(3)
    return CmngEntry(int(match.group(1)), int(match.group(2)), bytes.fromhex(sha) if sha else None)


def parse_list_line(line: str) -> CmngEntry:
    match = _LIST_LINE.match(line.strip())
    if not match:
        raise DeviceError(f"unexpected %CMNG reply line: {line[:60]!r}", code="at.garbled")
    return _entry(match)


def parse_read(line: str) -> tuple[CmngEntry, bytes]:
    """`%CMNG: <tag>,<type>,"<sha>","<content>"` → the entry and the content bytes."""
    match = _READ_LINE.match(line.strip())
    if not match:
        raise DeviceError("a %CMNG read reply without content", code="at.garbled")
    return _entry(match), match.group(4).encode("latin-1")


def parse_keygen(line: str) -> bytes:
    """`%KEYGEN: "<b64url(CSR DER)>.<b64url(COSE_Sign1)>"` → CSR DER."""
    match = re.match(r'^%KEYGEN: ?"([A-Za-z0-9_\-]+)\.([A-Za-z0-9_\-]*)"', line.strip())
    if not match:
        raise DeviceError("unexpected %KEYGEN reply", code="at.garbled")
    body = match.group(1)
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise DeviceError("%KEYGEN reply is not base64url", code="at.garbled") from None


def parse_cfun(line: str) -> int:
    match = re.match(r"^\+CFUN: ?(\d+)", line.strip())
    if not match:
        raise DeviceError(f"unexpected +CFUN reply: {line[:40]!r}", code="at.garbled")
    return int(match.group(1))


def parse_imei(lines: tuple[str, ...]) -> str:
    for line in lines:
        match = re.search(r"(\d{15})", line)
        if match:
            return match.group(1)
    raise DeviceError("the modem did not report an IMEI", code="at.garbled")


def sync_line(transport: Transport, timeout: float, flush: bytes = b"") -> bool:
    """Bring the modem's line state to "between commands": True once `AT` gets OK.

    at_host ignores line ends inside double quotes, so noise or the rest of a cut command
    with an odd number of `"` swallows a plain `AT`; the second try closes the quote first.
    A `"` is sent only then: to a modem outside quotes it would open one."""
    for lead in (flush, RESYNC):
        transport.write(lead + command("AT"))
        reader = ReplyReader(command("AT"), prefix=None)
        deadline = now(transport) + timeout
        while (remaining := deadline - now(transport)) > 0:
            reply = reader.feed(transport.read(4096, remaining))
            while reply is not None:
                if reply.ok:
                    drain(transport, 0.02)
                    return True
                # The flush line's ERROR (noise ahead of it): AT's own reply may follow.
                reply = reader.feed(b"")
    return False


# ---------------------------------------------------------------------------------------------
# The drive loop


class AtCmngSession(WritesDecodedBundles):
    """A conversation with an nRF91 modem over its AT interface."""

    name: ClassVar[str] = NAME
    profile: ClassVar[DialectProfile] = PROFILE
    CUT_RESYNC: ClassVar[bytes | None] = None  # whole lines only: nothing is ever cut
    # The signed attestation of the last %KEYGEN (device UUID, CSR digest), checked against
    # its CSR; None before one or when the modem sent none.
    last_attestation: nrf_attestation.KeygenAttestation | None = None
    # Told the bytes of the command being sent as they leave (a write's progress), or None.
    _on_sent: Callable[[int], None] | None = None

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float,
        retries: int,
        trace: TraceLog | None = None,
    ) -> None:
        self._transport = transport
        self._timeout = timeout
        self._retries = max(0, retries)
        self.bytes_sent = 0
        self._sends = 0  # commands sent, retries included
        if trace is None and env_enabled():
            trace = TraceLog(lambda: now(transport))
        self._trace = trace
        self._sync()
        self._request(command("AT+CMEE=1"), "AT+CMEE=1")

    def _sync(self) -> None:
        """Align with the device before the first command: nothing to do on a plain AT
        interface, whose first command resynchronises the line if it gets no answer (a
        subclass behind a shell waits for its prompt here)."""

    # -- probing --------------------------------------------------------------------------
    @classmethod
    def probe(cls, transport: Transport, timeout: float) -> bool:
        """Does an AT interpreter answer `AT` with OK? A leading line end flushes noise.

        at_host ignores line ends inside double quotes, so noise with an odd number of `"`
        (another dialect's probe: a native HELLO frame's sequence number or CRC can be 0x22)
        swallows the first attempt; the second closes the quote first."""
        drain(transport)
        return sync_line(transport, timeout / 2, flush=b"\r\n")

    # -- the one place that talks to the transport -------------------------------------------
    def _attempt(
        self, data: bytes, what: str, prefix: str | None, wait: float
    ) -> Reply | ProvisionError | None:
        """Send one command once: its reply; None when nothing came back within `wait` s;
        an error (returned, not raised) when what came back was garbled — both are worth
        another try, and the error is what to say if it was the last."""
        reader = ReplyReader(data, prefix)
        seen = self._trace_sent(data)
        send(self._transport, data, self._on_sent)
        self.bytes_sent += len(data)
        self._sends += 1
        reply = read_until(self._transport, reader.feed, wait, seen)
        if reply is None and seen is not None and self._trace is not None:
            self._trace.note("rx", f"no reply within {wait:g} s")
        return reply

    def _resync(self) -> None:
        """Put the modem's line state back to "between commands" before a command is sent
        again: the rest of a cut `AT%CMNG=0,…,"…` (a power cut, a garbled line) leaves an
        odd number of `"`, and at_host then takes every line end as inside quotes."""
        before = len(RESYNC) + 2 * len(command("AT"))
        sync_line(self._transport, min(self._timeout, 1.0))
        self.bytes_sent += before  # at most what sync_line sends

    def _request(
        self,
        data: bytes,
        what: str,
        *,
        prefix: str | None = None,
        retry: bool = True,
        timeout: float | None = None,
        parse: Callable[[Reply], T] | None = None,
        attempts: int | None = None,
    ) -> T | Reply:
        """Send `data` through the one retry loop (provision.dialects.drive); return its OK
        reply (or `parse(reply)`).

        A lost reply, a reply `parse` cannot read, or an error that to a command we built
        and checked can only mean the line garbled it (line_garbled) is a remote
        protocol error: the line is resynchronised and the command sent again. Any other
        error reply is the modem's answer and is raised at once. At most 1 + retries sends.
        `what` names the command in errors (never key bytes)."""
        wait = self._timeout if timeout is None else timeout
        sends = attempts if attempts is not None else 1 + (self._retries if retry else 0)

        def attempt() -> T | Reply | None:
            reply = self._attempt(data, what, prefix, wait)
            if reply is None:
                return None
            if isinstance(reply, ProvisionError):
                raise Garbled(reply)
            if not reply.ok:
                error = _reply_error(what, reply)
                if line_garbled(reply.cme):
                    raise Garbled(error)
                raise error
            if parse is None:
                return reply
            if reply.near_misses:
                raise Garbled(
                    DeviceError(f"{what}: a reply line arrived garbled", code="at.garbled")
                )
            try:
                return parse(reply)
            except DeviceError as err:
                raise Garbled(err) from None  # a garbled information line: ask again

        answer = retried(
            attempt,
            attempts=sends,
            no_answer=lambda: self._no_answer(what, wait, sends),
            resync=self._resync,
        )
        return cast("T | Reply", answer)

    def _no_answer(self, what: str, wait: float, attempts: int) -> LinkError:
        return LinkError(
            f"{self.name}: no reply to {what} within {wait:g} s ({attempts} attempt(s))",
            code="link.timeout",
        )

    def _ok(
        self, data: bytes, what: str, *, prefix: str | None = None, retry: bool = False
    ) -> Reply:
        reply = self._request(data, what, prefix=prefix, retry=retry)
        assert isinstance(reply, Reply)
        return reply

    def _trace_sent(self, data: bytes) -> LineSplitter | None:
        """Trace a command (redacted) and return what traces its reply lines."""
        log = self._trace
        if log is None:
            return None
        shown, meaning, secrets = trace_command(data)
        log.secret(*secrets)
        log.line("tx", shown, meaning)

        def received(text: str) -> None:
            if text:
                shown, meaning = trace_reply(text)
                log.line("rx", redact_base64_runs(shown) if secrets else shown, meaning)

        return LineSplitter(received)

    # -- modem state ------------------------------------------------------------------------
    def _cfun(self) -> int:
        def mode(reply: Reply) -> int:
            if not reply.lines:
                raise DeviceError(
                    "the modem did not report its functional mode (+CFUN)", code="at.garbled"
                )
            return parse_cfun(reply.lines[0])

        return cast(
            int, self._request(command("AT+CFUN?"), "AT+CFUN?", prefix="+CFUN:", parse=mode)
        )

    @contextlib.contextmanager
    def _offline(self) -> Iterator[None]:
        """Credential changes need the modem offline; put back the mode it was in after."""
        previous = self._cfun()
        if previous not in ACTIVE_CFUN_MODES:
            yield
            return
        self._ok(command(f"AT+CFUN={OFFLINE_CFUN_MODE}"), f"AT+CFUN={OFFLINE_CFUN_MODE}")
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self._ok(command(f"AT+CFUN={previous}"), f"AT+CFUN={previous}", retry=True)
            raise
        self._ok(command(f"AT+CFUN={previous}"), f"AT+CFUN={previous}", retry=True)

    # -- DialectSession ---------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        imei = parse_imei(self._ok(command("AT+CGSN=1"), "AT+CGSN=1", prefix="", retry=True).lines)
        fw = self._ok(command("AT+CGMR"), "AT+CGMR", prefix="", retry=True).lines
        model = self._ok(command("AT+CGMM"), "AT+CGMM", prefix="", retry=True).lines
        details: dict[str, object] = {"cfun": self._cfun()}
        if model:
            details["model"] = model[0].strip()
        return DeviceInfo(NAME, imei, fw[0].strip() if fw else "", details)

    def _entries(self, sec_tag: int | None = None, nrf_type: int | None = None) -> list[CmngEntry]:
        def entries(reply: Reply) -> list[CmngEntry]:
            return [parse_list_line(line) for line in reply.lines]

        found = self._request(
            encode_list(sec_tag, nrf_type), "AT%CMNG=1", prefix="%CMNG:", parse=entries
        )
        return cast("list[CmngEntry]", found)

    def list(self) -> list[SlotInfo]:
        return builtins.list(_slots(self._entries()))

    def read(self, sec_tag: int, slot_type: SlotType) -> bytes:
        if not slot_type.is_certificate:
            raise PolicyError(
                f"{slot_type.label} cannot be read back from an nRF91 modem",
                code="device.secret_slot",
            )
        nrf_type = int(SLOT_TO_NRF[slot_type])
        what = f"AT%CMNG=2,{sec_tag},{nrf_type}"
        reply = self._ok(encode_read(sec_tag, nrf_type), what, prefix="%CMNG:", retry=True)
        if not reply.lines:
            raise DeviceError(
                f"sec_tag {sec_tag} {slot_type.label}: the modem returned no content",
                code="device.not_found",
            )
        return parse_read(reply.lines[0])[1]

    def check_keygen(self, sec_tag: int, subject: str | None) -> None:
        data = encode_keygen(sec_tag, subject)
        if len(data) - len(TERMINATOR) > MAX_COMMAND_CHARS:
            raise PolicyError(
                f"the AT%KEYGEN command would be {len(data) - len(TERMINATOR)} bytes; the "
                f"modem's AT buffer takes {MAX_COMMAND_CHARS}: use a shorter --subject",
                code="keygen.subject",
            )

    def write(
        self,
        credentials: CredentialSet,
        progress: Progress | None = None,
        *,
        held: Holdings | None = None,
    ) -> WriteResult:
        plans = plan_write(credentials)  # PolicyError here: nothing sent yet
        encoded = {(p.sec_tag, int(p.nrf_type)): (p, encode_write(p)) for p in plans}
        sha = {key: hashlib.sha256(plan.content).digest() for key, (plan, _) in encoded.items()}
        # An entry that already holds exactly its new content is both old and new: keeping
        # it cannot mix sets, and sending it again only costs line time. (What a listing
        # shows is true; what it leaves out may not be: see _replaced.)
        unchanged = [k for k in encoded if held is not None and held.get(_slot_key(k)) == sha[k]]
        total = sum(len(data) for k, (_, data) in encoded.items() if k not in unchanged)
        start_bytes, start = self.bytes_sent, now(self._transport)
        written: dict[tuple[int, int], SlotInfo] = {}
        done = 0
        bar = SentBytes(progress, total)
        # Every entry has 1 + retries sends in all, digest-mismatch rewrites included.
        sends_left = {key: 1 + self._retries for key in encoded}
        listed: dict[int, builtins.list[CmngEntry]] = {}
        doomed = _replaced(credentials.sec_tags, encoded, unchanged)
        pending = [k for k in encoded if k not in unchanged]
        with self._offline():
            self._clear(doomed)
            checked = list(encoded)
            first = True
            while True:
                for key in pending:
                    plan, data = encoded[key]
                    before = self._sends
                    # The bar moves as the line's bytes leave (a long line at 1200 baud).
                    self._on_sent = bar.part(done) if first else None
                    try:
                        self._write_entry(plan, data, sends_left[key])
                    finally:
                        self._on_sent = None
                    sends_left[key] -= self._sends - before
                    if first:
                        done += len(data)
                        bar.show(done)
                # One list per tag checks every digest and finds what the tag no longer
                # holds; the last of each tag is the job's verify.
                for sec_tag in sorted({k[0] for k in checked}):
                    listed[sec_tag] = self._entries(sec_tag)
                found = {(e.sec_tag, e.nrf_type): e for tag in listed.values() for e in tag}
                mismatched = []
                for key in checked:
                    plan = encoded[key][0]
                    entry = found.get(key)
                    if entry is None or entry.sha256 != sha[key]:
                        mismatched.append(key)
                    else:
                        written[key] = SlotInfo(
                            plan.sec_tag, plan.slot_type, len(plan.content), entry.sha256
                        )
                first = False
                if not mismatched:
                    break
                spent = [k for k in mismatched if sends_left[k] <= 0]
                if spent:
                    plan = encoded[spent[0]][0]
                    raise DigestMismatch(
                        f"{plan.where}: the modem's SHA-256 differs from the digest of what "
                        "was sent"
                    )
                # Sending an entry again overwrites what a garbled send stored: only new
                # entries are in the set's tags by now.
                pending = checked = mismatched
        return WriteResult(
            tuple(written[k] for k in encoded),
            self.bytes_sent - start_bytes,
            now(self._transport) - start,
            listing=_slots(e for tag in listed.values() for e in tag),
            unchanged=tuple(_slot_key(k) for k in unchanged),
            resent=any(left < self._retries for left in sends_left.values()),
        )

    def _clear(self, targets: builtins.list[tuple[int, int]]) -> None:
        """Delete `targets` (what `_replaced` names) before anything new is written. The
        deletes are checked: a garbled `AT%CMNG=3,42,1` can name another tag and be
        answered 513 (not found), which looks like success."""
        for _ in range(1 + self._retries):
            if not targets:
                return
            for key in targets:
                self._delete_entry(*key)
            targets = sorted(set(targets) & self._held_keys(sorted({k[0] for k in targets})))
        if not targets:
            return
        tag, nrf_type = targets[0]
        raise DeviceError(
            f"sec_tag {tag} {NRF_TO_SLOT[nrf_type].label}: still on the modem after "
            f"{1 + self._retries} deletes; nothing new written",
            code="at.delete_failed",
        )

    def _held_keys(self, sec_tags: builtins.list[int]) -> set[tuple[int, int]]:
        """(sec_tag, type) of the entries in `sec_tags`, from two listings that agree (or
        all that any listing showed: a dropped line must not hide an entry)."""
        seen: set[tuple[int, int]] = set()
        previous = None
        for _ in range(2 + self._retries):
            keys = {(e.sec_tag, e.nrf_type) for tag in sec_tags for e in self._entries(tag)}
            if keys == previous:
                return keys
            seen |= keys
            previous = keys
        return seen

    def _delete_entry(self, sec_tag: int, nrf_type: int) -> None:
        """Send one delete, once: _clear lists afterwards and deletes again what is
        still there, so that loop is the retry (at most 1 + retries sends per entry).
        "Not found" is what was asked; silence or a reply the line garbled is left to the
        listing to judge."""
        what = f"AT%CMNG=3,{sec_tag},{nrf_type}"
        reply = self._attempt(encode_delete(sec_tag, nrf_type), what, None, self._timeout)
        if not isinstance(reply, Reply) or reply.ok or reply.cme == CME_NOT_FOUND:
            return
        if not line_garbled(reply.cme):
            raise _reply_error(what, reply)

    def _write_entry(self, plan: PlannedWrite, data: bytes, attempts: int) -> None:
        what = f"AT%CMNG=0,{plan.sec_tag},{int(plan.nrf_type)},<{plan.slot_type.label}>"
        try:
            self._request(data, what, attempts=attempts)
        except DeviceError as err:
            if err.code != "at.cme.519":
                raise
            # Firmware that refuses to overwrite ("already exists"): delete, then write.
            nrf_type = int(plan.nrf_type)
            self._ok(encode_delete(plan.sec_tag, nrf_type), f"AT%CMNG=3,{plan.sec_tag},{nrf_type}")
            self._request(data, what, attempts=attempts)

    def delete(self, sec_tag: int | None, slot_type: SlotType | None) -> None:
        if slot_type is SlotType.KEY_PASSWORD:
            raise PolicyError(
                "at-cmng keeps no key_password entry (it is the client_key's passwd)",
                code="slot.unsupported",
            )
        if sec_tag is None and slot_type is not None:
            raise PolicyError("deleting one slot type needs a sec_tag", code="device.delete_scope")
        with self._offline():
            if slot_type is not None and sec_tag is not None:
                targets = [(sec_tag, int(SLOT_TO_NRF[slot_type]))]
            else:
                targets = [
                    (e.sec_tag, e.nrf_type)
                    for e in self._entries(sec_tag)
                    if e.sec_tag <= MAX_SEC_TAG and e.nrf_type in NRF_TO_SLOT
                ]
            for tag, nrf_type in targets:
                what = f"AT%CMNG=3,{tag},{nrf_type}"
                self._ok(encode_delete(tag, nrf_type), what)

    def keygen(self, sec_tag: int, subject: str | None = None) -> bytes:
        data = encode_keygen(sec_tag, subject)
        with self._offline():
            # Key generation takes the modem a moment; give it more than one line's time.
            # Sent once: a second AT%KEYGEN would replace the key of the first.
            reply = self._attempt(data, f"AT%KEYGEN={sec_tag},2,0", "%KEYGEN:", self._timeout * 5)
            if isinstance(reply, ProvisionError):
                raise reply  # at-shell: the shell cut or refused the line
            if reply is None:
                raise LinkError(
                    f"at-cmng: no reply to AT%KEYGEN={sec_tag} within {self._timeout * 5:g} s",
                    code="link.timeout",
                )
            if not reply.ok:
                raise _reply_error(f"AT%KEYGEN={sec_tag}", reply)
        if not reply.lines:
            raise DeviceError("%KEYGEN answered OK without a CSR", code="at.garbled")
        csr = parse_keygen(reply.lines[0])
        from provision.dialects import nrf_attestation  # COSE and CBOR: keygen only

        self.last_attestation = nrf_attestation.check_keygen_reply(reply.lines[0], csr, sec_tag)
        return csr

    def attestation_token(self) -> nrf_attestation.IdentityToken | None:
        """The modem's signed identity (%ATTESTTOKEN); None where the firmware lacks it."""
        what = "AT%ATTESTTOKEN"
        try:
            reply = self._ok(command(what), what, prefix="%ATTESTTOKEN:", retry=True)
        except DeviceError:
            return None  # firmware without %ATTESTTOKEN
        if not reply.lines:
            return None
        from provision.dialects import nrf_attestation

        return nrf_attestation.parse_attest_token(reply.lines[0].split(":", 1)[1])

    def command_reply(self, text: str, prefix: str, timeout: float) -> Reply:
        """One command of the caller's (a simulator's test command, for instance), sent once
        and answered within `timeout` s; its reply as the modem gave it."""
        reply = self._attempt(command(text), text.split("=", 1)[0], prefix, timeout)
        if isinstance(reply, ProvisionError):
            raise reply
        if reply is None:
            raise LinkError(
                f"no reply to {text.split('=', 1)[0]} within {timeout:g} s", code="link.timeout"
            )
        return reply

    def close(self) -> None:
        self._transport.close()


def _replaced(
    sec_tags: Iterable[int],
    planned: Container[tuple[int, int]],
    unchanged: Container[tuple[int, int]],
) -> list[tuple[int, int]]:
    """What a write deletes before it sends anything (NO_MIX_GUARANTEE): every entry of ours
    in the set's tags, the ones the set rewrites and, like the native device, the ones it
    no longer gives the tag, except a client_key the set does not carry (it may come from
    %KEYGEN and is never in a set that only brings its certificate) and an entry
    `unchanged` (it holds its new content already). Each type whether a listing shows it
    or not: a listing that shows an entry is true (the device sent that line), one that
    does not may be wrong (a dropped line; after a stall, the reply to an earlier command
    read as this one's: make soak, renewal seed 5204)."""
    return [
        (sec_tag, int(nrf_type))
        for sec_tag in sec_tags
        for slot_type, nrf_type in SLOT_TO_NRF.items()
        if (slot_type is not SlotType.CLIENT_KEY or (sec_tag, int(nrf_type)) in planned)
        and (sec_tag, int(nrf_type)) not in unchanged
    ]


def _slot_key(key: tuple[int, int]) -> SlotKey:
    return key[0], NRF_TO_SLOT[key[1]]


def _slots(entries: Iterable[CmngEntry]) -> tuple[SlotInfo, ...]:
    """The entries that are slots of ours, in key order: modem-internal ones (reserved
    tags, identity keys) are not."""
    found = [
        SlotInfo(e.sec_tag, NRF_TO_SLOT[e.nrf_type], None, e.sha256)
        for e in entries
        if e.sec_tag <= MAX_SEC_TAG and e.nrf_type in NRF_TO_SLOT
    ]
    return tuple(sorted(found, key=lambda s: (s.sec_tag, int(s.type))))


class DigestMismatch(VerifyFailed):
    """The modem stored something else than was sent (a corrupted line) and rewrites did
    not fix it."""


def _reply_error(what: str, reply: Reply) -> ProvisionError:
    if reply.cme is None:
        return DeviceError(f"{what}: the modem answered ERROR", code="at.error")
    if reply.cme == CME_MEMORY_FULL:
        return StoreFull(f"{what}: +CME ERROR: {reply.cme} ({cme_message(reply.cme)})")
    return DeviceError(
        f"{what}: +CME ERROR: {reply.cme} ({cme_message(reply.cme)})", code=f"at.cme.{reply.cme}"
    )


SESSION = AtCmngSession
