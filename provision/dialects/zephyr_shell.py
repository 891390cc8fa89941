"""The `zephyr-shell` dialect: any Zephyr device with the TLS credentials shell (`cred`).

The sans-IO half (`plan_write`, `encode_*`, `ShellReader`, `parse_*`) turns operations into
shell lines and shell output into values. `ZephyrShellSession` is the drive loop over a
Transport: one command line at a time, waiting for the prompt after each.

Source of the syntax, messages and digest rule: Zephyr
subsys/net/lib/tls_credentials/tls_credentials_shell.c and tls_credentials_digest_raw.c
(see docs/dialects.md).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from provision.bundle.model import CredentialSet, Slot, SlotFlags, SlotType
from provision.dialects import TARGETS, mbedtls
from provision.dialects.at_cmng import NO_MIX_GUARANTEE, slot_pem
from provision.dialects.base import (
    Capability,
    DeviceInfo,
    DialectProfile,
    Holdings,
    Progress,
    Refusal,
    SentBytes,
    SlotInfo,
    WriteResult,
    WritesDecodedBundles,
)
from provision.dialects.drive import Garbled as LineGarbled
from provision.dialects.drive import retried
from provision.dialects.lines import (
    EOL,
    ShellReader,
    drain,
    now,
    probe_shell,
    read_until,
)
from provision.errors import DeviceError, LinkError, PolicyError, ProvisionError, StoreFull
from provision.slot_view import digest_is_secret
from provision.trace import LineSplitter, TraceLog, env_enabled, redact_base64_runs
from provision.transport.base import Transport, send

NAME = "zephyr-shell"
# CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE default: the base64 text of one credential
# must stay below it (the shell refuses a chunk that would fill it).
DEFAULT_CRED_BUF_SIZE = 1024
# base64 characters per `cred buf` line. The shell's command buffer
# (CONFIG_SHELL_CMD_BUFF_SIZE, 256 by default) must hold "cred buf " + chunk; shorter lines
# also stay clear of the UART backend's small RX ring buffer.
DEFAULT_CHUNK_CHARS = 128

# Names the shell accepts on input (the first of each group is also its human-readable name).
TYPE_KEYWORD: dict[SlotType, str] = {
    SlotType.ROOT_CA: "CA_CERT",
    SlotType.CLIENT_CERT: "CLIENT_CERT",
    SlotType.CLIENT_KEY: "PRIVATE_KEY",
    SlotType.PSK: "PSK",
    SlotType.PSK_IDENTITY: "PSK_ID",
}
# The compact names `cred list` prints (the last of each group in the shell's table).
COMPACT_TYPE: dict[str, SlotType] = {
    "CA": SlotType.ROOT_CA,
    "SERV": SlotType.CLIENT_CERT,
    "PK": SlotType.CLIENT_KEY,
    "PSK": SlotType.PSK,
    "PSK_ID": SlotType.PSK_IDENTITY,
}

_LIST_LINE = re.compile(r"^(\d+),([A-Z_]+),([A-Za-z0-9+/=]+|ERROR|N/A),(-?\d+)$")
_FOUND = re.compile(r"^(\d+) credentials found\.$")
_CREDENTIALS_FOUND = re.compile(r"\d+ credentials found\.")
_STORED = re.compile(r"^Stored (\d+) bytes\.$")
_ADDED = re.compile(r"^Added TLS credential of type (\w+), sectag (\d+), and length (\d+) bytes\.$")
# The human-readable names `cred add` answers with.
ADDED_TYPE: dict[str, SlotType] = {
    "CA_CERT": SlotType.ROOT_CA,
    "SERVER_CERT": SlotType.CLIENT_CERT,
    "PRIVATE_KEY": SlotType.CLIENT_KEY,
    "PRE_SHARED_KEY": SlotType.PSK,
    "PRE_SHARED_KEY_ID": SlotType.PSK_IDENTITY,
}


# ---------------------------------------------------------------------------------------------
# What is stored


def stored_bytes(slot: Slot) -> tuple[bytes, str]:
    """One slot's payload as sent and the `cred add` format: PEM with `bint` (the shell adds
    the NUL mbedTLS needs to parse PEM), PSK and identity as raw bytes with `bin`."""
    if slot.type in (SlotType.ROOT_CA, SlotType.CLIENT_CERT, SlotType.CLIENT_KEY):
        return slot_pem(slot), "bint"
    return slot.data, "bin"


@dataclass(frozen=True)
class PlannedAdd:
    sec_tag: int
    slot_type: SlotType
    payload: bytes = field(repr=False)  # what goes through `cred buf` (before base64)
    fmt: str  # "bint" or "bin"

    @property
    def stored(self) -> bytes:
        """The bytes the device keeps, which its digest covers."""
        return self.payload + b"\x00" if self.fmt == "bint" else self.payload

    @property
    def where(self) -> str:
        return f"sec_tag {self.sec_tag} {self.slot_type.label}"


def plan_adds(
    credentials: CredentialSet, cred_buf_size: int = DEFAULT_CRED_BUF_SIZE
) -> tuple[list[PlannedAdd], list[Refusal]]:
    """The `cred add`s for a set, and what the shell would refuse of them. Several root_ca in
    one tag become one CA_CERT credential: the PEM certificates one after another, one NUL."""
    plans: list[PlannedAdd] = []
    refusals: list[Refusal] = []
    for sec_tag in credentials.sec_tags:
        slots = credentials.in_tag(sec_tag)
        for slot in slots:
            if slot.type is SlotType.KEY_PASSWORD or slot.flags & SlotFlags.ENCRYPTED:
                refusals.append(
                    Refusal(
                        "key.encrypted_unsupported",
                        f"sec_tag {slot.sec_tag}: Zephyr's TLS credentials shell has no "
                        "password-encrypted client_key; provide the key unencrypted (or use "
                        "the at-cmng dialect)",
                        slot.sec_tag,
                        slot.type,
                    )
                )
        kept = [
            s
            for s in slots
            if s.type is not SlotType.KEY_PASSWORD and not s.flags & SlotFlags.ENCRYPTED
        ]
        roots = [s for s in kept if s.type is SlotType.ROOT_CA]
        if roots:
            chain = b"".join(stored_bytes(s)[0] for s in roots)
            plans.append(PlannedAdd(sec_tag, SlotType.ROOT_CA, chain, "bint"))
        for slot in kept:
            if slot.type is not SlotType.ROOT_CA:
                payload, fmt = stored_bytes(slot)
                plans.append(PlannedAdd(sec_tag, slot.type, payload, fmt))
    for plan in plans:
        if not plan.payload:
            refusals.append(
                Refusal(
                    "content.empty", f"{plan.where}: empty content", plan.sec_tag, plan.slot_type
                )
            )
        size = len(base64.b64encode(plan.payload))
        if size >= cred_buf_size - 1:  # cred_buf_write keeps the last byte free
            refusals.append(
                Refusal(
                    "size.too_large",
                    f"{plan.where}: {size} base64 characters do not fit the shell's credential "
                    f"buffer ({cred_buf_size} bytes, CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE)",
                    plan.sec_tag,
                    plan.slot_type,
                )
            )
    return plans, refusals


def plan_write(
    credentials: CredentialSet, cred_buf_size: int = DEFAULT_CRED_BUF_SIZE
) -> list[PlannedAdd]:
    """The `cred add`s for a set, or PolicyError before anything is sent."""
    plans, refusals = plan_adds(credentials, cred_buf_size)
    if refusals:
        raise PolicyError(refusals[0].message, code=refusals[0].code)
    return plans


def _refusals(credentials: CredentialSet) -> list[Refusal]:
    try:
        return plan_adds(credentials)[1] + mbedtls.advice(credentials)
    except ProvisionError:
        return []  # unreadable content: the check reports it where it parses the item


def _stored_forms(credentials: CredentialSet) -> dict[tuple[int, SlotType], bytes]:
    return {(p.sec_tag, p.slot_type): p.stored for p in plan_adds(credentials)[0]}


PROFILE = DialectProfile(
    dialect=NAME,
    target=TARGETS[NAME],
    description="Zephyr TLS credentials shell (base64 into a 1024-byte cred buffer)",
    slot_types=frozenset(TYPE_KEYWORD),
    capabilities=frozenset({Capability.READ_BACK}),
    refusals=_refusals,
    stored_forms=_stored_forms,
    encodings="PEM (bint, NUL-terminated) for certificates and keys; raw bytes for PSKs",
    # CONFIG_TLS_MAX_CREDENTIALS_NUMBER defaults to 4 (volatile backend).
    max_items=4,
    guarantee=NO_MIX_GUARANTEE,
)


# ---------------------------------------------------------------------------------------------
# Command lines


def line(text: str) -> bytes:
    return text.encode("ascii") + EOL


def encode_buf_lines(payload: bytes, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> list[bytes]:
    text = base64.b64encode(payload).decode()
    return [line(f"cred buf {text[i : i + chunk_chars]}") for i in range(0, len(text), chunk_chars)]


def encode_add(plan: PlannedAdd) -> bytes:
    return line(f"cred add {plan.sec_tag} {TYPE_KEYWORD[plan.slot_type]} DEFAULT {plan.fmt}")


def encode_delete(sec_tag: int, slot_type: SlotType) -> bytes:
    return line(f"cred del {sec_tag} {TYPE_KEYWORD[slot_type]}")


def encode_list(sec_tag: int | None = None, slot_type: SlotType | None = None) -> bytes:
    if sec_tag is None:
        return line("cred list")
    if slot_type is None:
        return line(f"cred list {sec_tag}")
    return line(f"cred list {sec_tag} {TYPE_KEYWORD[slot_type]}")


def encode_get(sec_tag: int, slot_type: SlotType) -> bytes:
    return line(f"cred get {sec_tag} {TYPE_KEYWORD[slot_type]} bint")


# ---------------------------------------------------------------------------------------------
# What a line means, for --trace (secrets redacted)

_KEYWORD_TYPE = {v: k for k, v in TYPE_KEYWORD.items()}
_BUF_DATA = re.compile(r"(cred buf )(?!clear\b)(\S+)")


def trace_line(text: str, *, secret: bool = False) -> tuple[str, str]:
    """One command line as sent (no line end) → (text to show, meaning). `secret`: a
    `cred buf` line carrying base64 of a client_key or PSK; its data shows as its size."""
    words = text.split()
    if not words:
        return text, "an empty line (align with the prompt)"
    if words[:2] == ["cred", "buf"]:
        if words[2:] == ["clear"]:
            return text, "empty the credential buffer"
        data = " ".join(words[2:])
        part = "a client_key or PSK" if secret else "a credential"
        shown = f"cred buf <{len(data)} chars redacted>" if secret else text
        return shown, f"{len(data)} base64 characters of {part} into the buffer"
    if words[:2] == ["cred", "add"] and len(words) >= 4:
        what = _KEYWORD_TYPE.get(words[3])
        label = what.label if what is not None else words[3]
        return text, f"store the buffer as {label} in sec_tag {words[2]}"
    if words[:2] == ["cred", "del"] and len(words) >= 4:
        what = _KEYWORD_TYPE.get(words[3])
        return text, f"delete {what.label if what else words[3]} of sec_tag {words[2]}"
    if words[:2] == ["cred", "list"]:
        return text, "list credentials"
    if words[:2] == ["cred", "get"]:
        return text, "read a certificate back"
    return text, ""


def trace_output(text: str) -> str:
    """A received line for the trace: the shell echoes what it is sent, so the data of any
    `cred buf` line shows as its size (which chunks were secret is not known here); a
    `cred list` line of a secret slot shows no digest (provision.slot_view)."""
    listed = _LIST_LINE.match(text)
    if listed is not None and digest_is_secret(COMPACT_TYPE.get(listed[2], -1)):
        return f"{listed[1]},{listed[2]},<secret digest not shown>,{listed[4]}"
    return _BUF_DATA.sub(lambda m: f"{m[1]}<{len(m[2])} chars>", text)


# ---------------------------------------------------------------------------------------------
# Output


@dataclass(frozen=True)
class ListedCredential:
    sec_tag: int
    type_name: str
    digest: bytes | None
    status: int


def parse_list(lines: list[str]) -> list[ListedCredential]:
    found: list[ListedCredential] = []
    count = None
    for text in lines:
        match = _LIST_LINE.match(text)
        if match:
            digest = None
            if match.group(3) not in ("ERROR", "N/A"):
                try:
                    digest = base64.b64decode(match.group(3), validate=True)
                except binascii.Error:
                    digest = None
            found.append(
                ListedCredential(int(match.group(1)), match.group(2), digest, int(match.group(4)))
            )
            continue
        done = _FOUND.match(text)
        if done:
            count = int(done.group(1))
    if count is None:
        raise DeviceError(
            "`cred list` output ended without its 'credentials found' line",
            code="zephyr.garbled",
        )
    if count != len(found):
        raise DeviceError(
            f"`cred list` announced {count} credentials but listed {len(found)}",
            code="zephyr.garbled",
        )
    return found


def parse_get(lines: list[str]) -> bytes:
    chunks = [t for t in lines if re.fullmatch(r"[A-Za-z0-9+/=]+", t)]
    try:
        return base64.b64decode("".join(chunks), validate=True)
    except binascii.Error:
        raise DeviceError("`cred get` output is not base64", code="zephyr.garbled") from None


_DATA_RUN = re.compile(r"[A-Za-z0-9+/=]{12,}")


def device_message(lines: list[str]) -> str:
    """The first line worth showing a user. A line with a base64-looking run is skipped: it
    may be the (garbled) echo of a `cred buf` line, which can carry key bytes."""
    for text in lines:
        if _STORED.match(text) or text == "Credential buffer cleared.":
            continue
        if "cred buf" in text or _DATA_RUN.search(text):
            continue
        return text[:200]
    return "no recognisable answer"


class Garbled(Exception):
    """The answer shows the line corrupted this attempt (a retry may succeed). `final` is
    the error to raise if the last attempt ends like this."""

    def __init__(self, message: str, final: Exception | None = None) -> None:
        super().__init__(message)
        self.final = final


# ---------------------------------------------------------------------------------------------
# The drive loop


class ZephyrShellSession(WritesDecodedBundles):
    """A conversation with a Zephyr shell that has the `cred` command."""

    name: ClassVar[str] = NAME
    profile: ClassVar[DialectProfile] = PROFILE
    CUT_RESYNC: ClassVar[bytes | None] = None  # whole lines only: nothing is ever cut
    # During a write: the callback for the chunk line that starts `offset` bytes into the
    # slot's chunks (a write's progress), or None.
    _chunk_sent: Callable[[int], Callable[[int], None] | None] | None = None

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float,
        retries: int,
        chunk_chars: int = DEFAULT_CHUNK_CHARS,
        cred_buf_size: int = DEFAULT_CRED_BUF_SIZE,
        trace: TraceLog | None = None,
    ) -> None:
        self._transport = transport
        self._timeout = timeout
        self._retries = max(0, retries)
        self._chunk_chars = chunk_chars
        self._cred_buf_size = cred_buf_size
        self.bytes_sent = 0
        if trace is None and env_enabled():
            trace = TraceLog(lambda: now(transport))
        self._trace = trace
        self._sync()

    def _sync(self) -> None:
        """Align with the shell: every line sent is answered by exactly one prompt, but a boot
        banner's prompt may still be on its way. Send an empty line and read until quiet."""
        self._run(EOL, "an empty line", retry=True)
        drain(self._transport, min(0.1, self._timeout))

    @classmethod
    def probe(cls, transport: Transport, timeout: float) -> bool:
        """Is there a Zephyr shell with `cred`? `cred list` is harmless and says so."""
        return probe_shell(transport, line("cred list"), timeout, _CREDENTIALS_FOUND)

    def _run(
        self,
        data: bytes,
        what: str,
        *,
        retry: bool = False,
        secret: bool = False,
        sent: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Send one command line, return its output lines; `what` names it in errors.
        `secret`: the line carries key or PSK data (the trace shows its size only); `sent`
        hears of its bytes as they leave."""
        attempts = 1 + (self._retries if retry else 0)

        def attempt() -> list[str] | None:
            reader = ShellReader(data)
            seen = self._trace_sent(data, secret)
            send(self._transport, data, sent)
            self.bytes_sent += len(data)
            lines = read_until(self._transport, reader.feed, self._timeout, seen)
            if lines is None and self._trace is not None:
                self._trace.note("rx", f"no prompt within {self._timeout:g} s")
            return lines

        return retried(
            attempt,
            attempts=attempts,
            no_answer=lambda: LinkError(
                f"zephyr-shell: no prompt after {what} within {self._timeout:g} s "
                f"({attempts} attempt(s))",
                code="link.timeout",
            ),
            resync=lambda: drain(self._transport, min(0.1, self._timeout)),
        )

    def _trace_sent(self, data: bytes, secret: bool) -> LineSplitter | None:
        """Trace a line as sent (redacted) and return what traces the shell's output."""
        log = self._trace
        if log is None:
            return None
        text = data.decode("latin-1").rstrip("\r\n")
        if secret:
            # The shell echoes the line: its data must not come back in the trace either.
            log.secret(text.removeprefix("cred buf "))
        log.line("tx", *trace_line(text, secret=secret))

        def received(out: str) -> None:
            if out:
                shown = trace_output(out)
                log.line("rx", redact_base64_runs(shown) if secret else shown)

        return LineSplitter(received)

    # -- DialectSession ---------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        version = self._run(line("kernel version"), "kernel version", retry=True)
        devid = self._run(line("hwinfo devid"), "hwinfo devid", retry=True)
        device_id = next(
            (m.group(1) for t in devid if (m := re.match(r"^ID: ?(?:0x)?([0-9A-Fa-f]+)", t))),
            "unknown",
        )
        firmware = next((t for t in version if t.startswith("Zephyr version")), "")
        count = len(self._listed())
        return DeviceInfo(NAME, device_id, firmware, {"credentials": count})

    def _listed(
        self, sec_tag: int | None = None, slot_type: SlotType | None = None
    ) -> list[ListedCredential]:
        def attempt() -> builtins.list[ListedCredential]:
            try:
                out = self._run(encode_list(sec_tag, slot_type), "cred list")
                return parse_list(out)
            except (DeviceError, LinkError) as err:
                raise LineGarbled(err) from None  # lost or garbled on the line: ask again

        return retried(
            attempt,
            attempts=1 + self._retries,
            no_answer=lambda: LinkError("cred list: no answer", code="link.timeout"),
        )

    def list(self) -> list[SlotInfo]:
        found = [
            SlotInfo(c.sec_tag, COMPACT_TYPE[c.type_name], None, c.digest)
            for c in self._listed()
            if c.type_name in COMPACT_TYPE
        ]
        return sorted(found, key=lambda s: (s.sec_tag, int(s.type)))

    def read(self, sec_tag: int, slot_type: SlotType) -> bytes:
        if not slot_type.is_certificate:
            raise PolicyError(
                f"{slot_type.label} is never read back from a device", code="device.secret_slot"
            )
        out = self._run(encode_get(sec_tag, slot_type), f"cred get {sec_tag}", retry=True)
        if any(t.startswith("There is no TLS credential") for t in out):
            raise DeviceError(
                f"sec_tag {sec_tag} {slot_type.label}: not found on the device",
                code="device.not_found",
            )
        if any("isn't NULL-terminated" in t for t in out):
            raise DeviceError(
                f"sec_tag {sec_tag} {slot_type.label}: not stored as PEM text",
                code="zephyr.not_pem",
            )
        return parse_get(out)

    def check_keygen(self, sec_tag: int, subject: str | None) -> None:
        self.keygen(sec_tag, subject)  # refuses every request: the shell has no keygen

    def write(
        self,
        credentials: CredentialSet,
        progress: Progress | None = None,
        *,
        held: Holdings | None = None,
    ) -> WriteResult:
        plans = plan_write(credentials, self._cred_buf_size)  # PolicyError: nothing sent yet
        batches = [(p, encode_buf_lines(p.payload, self._chunk_chars)) for p in plans]
        total = sum(sum(len(x) for x in chunks) for _, chunks in batches)
        start_bytes, start = self.bytes_sent, now(self._transport)
        self._clear_replaced(credentials, plans)
        done = 0
        bar = SentBytes(progress, total)
        written: list[SlotInfo] = []
        for plan, chunks in batches:
            # The bar moves as each chunk line's bytes leave (_write_one).
            self._chunk_sent = lambda offset, base=done: bar.part(base + offset)
            try:
                # _clear_replaced took every slot of ours in the set's tags out first.
                written.append(self._write_slot(plan, chunks, False))
            finally:
                self._chunk_sent = None
            done += sum(len(x) for x in chunks)
            bar.show(done)
        return WriteResult(
            tuple(written), self.bytes_sent - start_bytes, now(self._transport) - start
        )

    def _write_slot(self, plan: PlannedAdd, chunks: builtins.list[bytes], exists: bool) -> SlotInfo:
        """One slot through the one retry loop: a slot garbled or lost on the line is
        written again from `cred buf clear`, after asking the shell what it now holds."""
        compact = next(k for k, v in COMPACT_TYPE.items() if v is plan.slot_type)
        state = {"exists": exists}

        def attempt() -> SlotInfo:
            try:
                return self._write_one(plan, chunks, state["exists"])
            except Garbled as err:
                final = err.final if isinstance(err.final, ProvisionError) else None
                raise LineGarbled(
                    final or LinkError(f"{plan.where}: {err}", code="zephyr.garbled")
                ) from None
            except LinkError as err:
                if err.code == "zephyr.rx_overflow":
                    raise  # the shell's configuration: the same every time
                raise LineGarbled(err) from None

        def start_over() -> None:
            # Whatever the shell holds now for this slot is suspect: start over.
            listed = {(c.sec_tag, c.type_name) for c in self._listed(plan.sec_tag)}
            state["exists"] = (plan.sec_tag, compact) in listed

        return retried(
            attempt,
            attempts=1 + self._retries,
            no_answer=lambda: LinkError(f"{plan.where}: no answer", code="link.timeout"),
            resync=start_over,
        )

    def _clear_replaced(self, credentials: CredentialSet, plans: builtins.list[PlannedAdd]) -> None:
        """Delete, before any `cred add`, every slot of ours in the set's tags that the set
        rewrites or no longer gives the tag (like the native device), except a client_key
        the set does not carry (it may have been made on the device). Zephyr's credential
        store has no transaction and no way to move a credential to another sec_tag, so this
        order is the guarantee (NO_MIX_GUARANTEE): a cut leaves old slots with some missing,
        or new ones with some missing, never old and new side by side in one tag."""
        planned = {(p.sec_tag, p.slot_type) for p in plans}
        # Every type, listed or not, and the deletes checked by listing: a garbled
        # `cred del 42 …` can name another tag, whose "There is no TLS credential" looks
        # like success.
        targets = [
            (tag, slot_type)
            for tag in credentials.sec_tags
            for slot_type in TYPE_KEYWORD
            if slot_type is not SlotType.CLIENT_KEY or (tag, slot_type) in planned
        ]
        for _ in range(1 + self._retries):
            for tag, slot_type in targets:
                self._delete_checked(tag, slot_type)
            targets = sorted(
                set(targets) & self._held_keys(sorted({t for t, _ in targets})),
                key=lambda k: (k[0], int(k[1])),
            )
            if not targets:
                return
        tag, slot_type = targets[0]
        raise DeviceError(
            f"sec_tag {tag} {slot_type.label}: still on the device after "
            f"{1 + self._retries} deletes; nothing new written",
            code="zephyr.delete_failed",
        )

    def _delete_checked(self, tag: int, slot_type: SlotType) -> None:
        def attempt() -> bool:
            try:
                self._delete_one(tag, slot_type, garbled_ok=True)
                return True
            except (Garbled, LinkError) as err:
                raise LineGarbled(
                    LinkError(f"sec_tag {tag} {slot_type.label}: {err}", code="zephyr.garbled")
                ) from None

        retried(
            attempt,
            attempts=1 + self._retries,
            no_answer=lambda: LinkError(f"cred del {tag}: no answer", code="link.timeout"),
        )

    def _held_keys(self, sec_tags: builtins.list[int]) -> set[tuple[int, SlotType]]:
        """(sec_tag, slot) of what `sec_tags` hold, from two listings that agree (or all
        that any listing showed)."""
        seen: set[tuple[int, SlotType]] = set()
        previous = None
        for _ in range(2 + self._retries):
            keys = {
                (c.sec_tag, COMPACT_TYPE[c.type_name])
                for tag in sec_tags
                for c in self._listed(tag)
                if c.type_name in COMPACT_TYPE
            }
            if keys == previous:
                return keys
            seen |= keys
            previous = keys
        return seen

    def _write_one(self, plan: PlannedAdd, chunks: builtins.list[bytes], exists: bool) -> SlotInfo:
        if exists:
            # The shell never overwrites ("already exists"): delete, then add.
            self._delete_one(plan.sec_tag, plan.slot_type, garbled_ok=True)
        # Sent once: write() retries the whole slot, so this stays within 1 + retries sends.
        self._run(line("cred buf clear"), "cred buf clear")
        secret = plan.slot_type in (SlotType.CLIENT_KEY, SlotType.PSK)
        offset = 0
        for chunk in chunks:
            sent = self._chunk_sent(offset) if self._chunk_sent is not None else None
            offset += len(chunk)
            out = self._run(chunk, f"cred buf (chunk for {plan.where})", secret=secret, sent=sent)
            self._expect_stored(out, len(chunk) - len("cred buf ") - len(EOL), plan)
        out = self._run(encode_add(plan), f"cred add for {plan.where}")
        self._expect_added(out, plan)
        return self._verify(plan)

    def _expect_stored(self, out: builtins.list[str], expected: int, plan: PlannedAdd) -> None:
        if any("RX ring buffer full" in t for t in out):
            raise LinkError(
                f"{plan.where}: the shell dropped input (RX ring buffer full); "
                "use shorter chunks or a lower baud rate",
                code="zephyr.rx_overflow",
            )
        if any(t.startswith("Not enough room in credential buffer") for t in out):
            raise Garbled(
                "not enough room in the credential buffer",
                DeviceError(
                    f"{plan.where}: Not enough room in credential buffer (the device's "
                    "CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE is smaller than this credential)",
                    code="zephyr.cred_buf_full",
                ),
            )
        stored = next((int(m.group(1)) for t in out if (m := _STORED.match(t))), None)
        if stored is None:
            raise Garbled(f"cred buf got no 'Stored' answer ({device_message(out)})")
        if stored != expected:
            raise Garbled(f"the shell stored {stored} of {expected} characters of a chunk")

    def _expect_added(self, out: builtins.list[str], plan: PlannedAdd) -> None:
        added = next((m for t in out if (m := _ADDED.match(t))), None)
        if added is not None:
            where = (int(added.group(2)), ADDED_TYPE.get(added.group(1)))
            if where != (plan.sec_tag, plan.slot_type):
                # The line garbled the command: the shell added it somewhere else. Take that
                # stray credential back out, then start this one again.
                if where[1] is not None:
                    self._delete_one(where[0], where[1], garbled_ok=True)
                raise Garbled(f"the shell added sec_tag {where[0]} {added.group(1)} instead")
            if int(added.group(3)) != len(plan.stored):
                raise Garbled(
                    f"the device stored {added.group(3)} bytes, {len(plan.stored)} were sent"
                )
            return
        message = device_message(out)
        if "Error: -12" in message or "No reference slot" in message or "heap" in message:
            raise StoreFull(f"{plan.where}: the device's credential store is full ({message})")
        if "already exists" in message:
            raise DeviceError(f"{plan.where}: {message}", code="zephyr.add_failed")
        raise Garbled(f"cred add failed: {message}")

    def _verify(self, plan: PlannedAdd) -> SlotInfo:
        expected = hashlib.sha256(plan.stored).digest()
        listed = self._listed(plan.sec_tag, plan.slot_type)
        if not listed:
            raise Garbled("not on the device after adding it")
        if listed[0].digest != expected:
            raise Garbled("the device's digest differs from the digest of what was sent")
        return SlotInfo(plan.sec_tag, plan.slot_type, len(plan.stored), listed[0].digest)

    def _delete_one(self, sec_tag: int, slot_type: SlotType, garbled_ok: bool = False) -> None:
        out = self._run(encode_delete(sec_tag, slot_type), f"cred del {sec_tag}")
        if any(t.startswith("Deleted TLS credential") for t in out):
            return
        if any(t.startswith("There is no TLS credential") for t in out):
            if garbled_ok:
                return  # gone already: what we wanted
            raise DeviceError(
                f"sec_tag {sec_tag} {slot_type.label}: not found on the device",
                code="device.not_found",
            )
        message = f"cred del answered: {device_message(out)}"
        if garbled_ok:
            raise Garbled(message)
        raise DeviceError(
            f"sec_tag {sec_tag} {slot_type.label}: {message}", code="zephyr.delete_failed"
        )

    def delete(self, sec_tag: int | None, slot_type: SlotType | None) -> None:
        if slot_type is SlotType.KEY_PASSWORD:
            raise PolicyError(
                "Zephyr's TLS credentials shell has no key_password slot", code="slot.unsupported"
            )
        if sec_tag is None and slot_type is not None:
            raise PolicyError("deleting one slot type needs a sec_tag", code="device.delete_scope")
        if sec_tag is not None and slot_type is not None:
            self._delete_one(sec_tag, slot_type)
            return
        for cred in self._listed(sec_tag):
            if cred.type_name in COMPACT_TYPE:
                self._delete_one(cred.sec_tag, COMPACT_TYPE[cred.type_name])

    def keygen(self, sec_tag: int, subject: str | None = None) -> bytes:
        raise PolicyError(
            "the Zephyr TLS credentials shell has no keygen: generate the key on the host "
            "(provision pki) or use a dialect with on-device keygen (native, at-cmng)",
            code="device.no_keygen",
        )

    def command_output(self, text: str, timeout: float) -> builtins.list[str]:
        """One command line of the caller's (a simulator's test command, for instance), sent
        once; its output lines up to the next prompt."""
        saved, self._timeout = self._timeout, timeout
        try:
            return self._run(line(text), text.split(" ", 2)[0])
        finally:
            self._timeout = saved

    def close(self) -> None:
        self._transport.close()


SESSION = ZephyrShellSession
