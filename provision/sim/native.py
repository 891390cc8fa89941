"""The simulated native-protocol device: DeviceProtocol (provision.link.device) over a SlotStore.

Options (sim:// query or `provision sim` flags): `uid` (hex; default derived from the seed),
`signer` (path to a provisioning public key or certificate: the device then applies only
bundles signed with it), `keygen=0` (no KEYGEN feature), `lean=0` (no LEAN feature: a device
from before BEGIN_LEAN and DATA_LEAN).
"""

from __future__ import annotations

import hashlib

from provision.bundle import format as bundle_format
from provision.bundle.model import SlotType
from provision.errors import BundleError, InputError
from provision.inputs import read_input
from provision.link import messages as m
from provision.link.device import DeviceFault, DeviceProtocol
from provision.sim.serve import SimContext
from provision.sim.store import StoreFull

FIRMWARE = "provision-sim 0.1"
# What a USB-serial bridge or an MCU UART commonly reaches (esptool switches to the same).
DEFAULT_RATES = "115200,230400,460800,921600"


class NativeDevice:
    # A frame opens and closes with 0x00 and holds none inside (COBS), but its body holds
    # CR and LF, where the runner's default units (a shell's lines) split it: a pty jig then
    # woke the host (and itself) several times per frame, never with a frame to decode.
    FRAME_END = b"\x00"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.profile = ctx.profile
        opts = ctx.options
        uid_hex = opts.get("uid") or hashlib.sha256(f"sim-{ctx.seed}".encode()).hexdigest()[:16]
        try:
            self.uid = bytes.fromhex(uid_hex)
        except ValueError:
            raise InputError(f"sim uid {uid_hex!r} is not hex") from None
        self.signer: bytes | None = None
        if opts.get("signer"):
            self.signer = read_input(opts["signer"], "signer key")
            _check_signer(self.signer, opts["signer"])
        self.keygen_enabled = _flag(opts, "keygen")
        # `tls=0`: a device without the TLS check, like the C stub or a real board.
        self.tls_enabled = _flag(opts, "tls")
        self.rates = _rates(opts.get("rates", DEFAULT_RATES))
        # `lean=0`: a device from before Feature.LEAN (BEGIN_LEAN, DATA_LEAN).
        self.lean_enabled = _flag(opts, "lean")
        self.line_baud: int = 0  # the UART's rate, kept by the runner
        self.baud_request: int | None = None  # read by the runner after CHANGE_BAUD's OK
        self._work = 0.0
        self._stage_id: int | None = None
        self._staged_to = 0  # bundle bytes programmed into the spare bank
        self._stage_at: dict[int, int | None] = {}  # record index -> flash offset of its data
        self._reset_requested = False
        self.protocol = self._new_protocol()

    def _new_protocol(self) -> DeviceProtocol:
        p = self.profile
        return DeviceProtocol(
            self,
            max_payload=p.max_payload,
            window=p.window,
            max_bundle=p.max_bundle,
            lean=self.lean_enabled,
        )

    # -- SimulatedDevice
    def boot(self) -> bytes:
        return b""

    def receive_data(self, data: bytes) -> bytes:
        before = self.protocol.frames
        out = self.protocol.receive_data(data)
        self._work += (self.protocol.frames - before) * self.profile.frame_us / 1e6
        if self._reset_requested:
            self._reset_requested = False
            self.store.mount()
            self.protocol = self._new_protocol()
            self._work += self.profile.boot_ms / 1e3
        return out

    def take_work_time(self) -> float:
        work, self._work = self._work + self.store.flash.take_busy(), 0.0
        return work

    def idle(self) -> None:
        self.store.erase_spare()

    # -- DeviceOps
    def hello_info(self, max_payload: int, window: int, max_bundle: int) -> m.HelloInfo:
        p = self.profile
        features = m.Feature.RESUME | m.Feature.READ
        if self.keygen_enabled:
            features |= m.Feature.KEYGEN
        if self.signer is not None:
            features |= m.Feature.SIGNED_ONLY
        if self.tls_enabled:
            features |= m.Feature.TLS_CHECK
        if self.rates:
            features |= m.Feature.BAUD
        if self.lean_enabled:
            features |= m.Feature.LEAN
        return m.HelloInfo(
            version=m.PROTOCOL_VERSION,
            max_payload=max_payload,
            window=window,
            max_bundle=max_bundle,
            max_slots=p.max_slots,
            max_tags=p.max_tags,
            max_slot_size=p.max_slot_size,
            features=int(features),
            uid=self.uid,
            firmware=FIRMWARE,
            rates=self.rates,
        )

    def baud_rates(self) -> tuple[int, ...]:
        return self.rates

    def set_baud(self, rate: int) -> int:
        self.baud_request = rate
        return self.line_baud

    def stage(self, transfer_id: int, prefix: memoryview) -> None:
        """Program the bundle's records into the spare bank as they arrive (the flash keeps
        pace with the line), so COMMIT programs only the entries kept and the bank header."""
        if transfer_id != self._stage_id:
            self._stage_id, self._staged_to, self._stage_at = transfer_id, 0, {}
            self.store.stage_start()
        for i, span in enumerate(bundle_format.record_spans(prefix)):
            if i not in self._stage_at:
                self._stage_at[i] = self.store.stage_entry((span.sec_tag, span.slot), span.length)
            at = self._stage_at[i]
            lo = max(span.start, self._staged_to)
            hi = min(span.start + span.length, len(prefix))
            if at is not None and lo < hi:
                self.store.stage_data(at + lo - span.start, bytes(prefix[lo:hi]))
        self._staged_to = len(prefix)

    def list_entries(self) -> list[m.Entry]:
        return [
            m.Entry(tag, int(slot), len(data), hashlib.sha256(data).digest())
            for (tag, slot), data in sorted(self.store.entries().items())
        ]

    def read_slot(self, sec_tag: int, slot: int) -> bytes:
        if slot not in (SlotType.ROOT_CA, SlotType.CLIENT_CERT):
            raise DeviceFault(m.ErrorCode.FORBIDDEN, "only certificates can be read")
        data = self.store.entries().get((sec_tag, slot))
        if data is None:
            raise DeviceFault(m.ErrorCode.NOT_FOUND, f"sec_tag {sec_tag} slot {slot} is empty")
        return data

    def apply_bundle(self, data: bytes) -> tuple[int, bytes]:
        try:
            decoded = bundle_format.decode(data)
        except BundleError as err:
            raise DeviceFault(m.ErrorCode.BAD_BUNDLE, err.message) from None
        if self.signer is not None:
            self._check_signature(decoded)
        creds = decoded.credentials
        keys = [s.key for s in creds]
        if len(set(keys)) != len(keys):
            raise DeviceFault(m.ErrorCode.UNSUPPORTED, "one root_ca per sec_tag on this device")
        # Each sec_tag in the bundle is replaced as a whole; other tags stay as they are.
        # A client_key the bundle does not carry stays: it may come from KEYGEN and never
        # leaves the device, so its certificate must be installable on its own.
        tags = set(creds.sec_tags)
        new = {
            k: v
            for k, v in self.store.entries().items()
            if k[0] not in tags or (k[1] == SlotType.CLIENT_KEY and k not in set(keys))
        }
        new.update({s.key: s.data for s in creds})
        try:
            self.store.replace(new)
        except StoreFull as err:
            raise DeviceFault(m.ErrorCode.NO_SPACE, str(err)) from None
        self._work += self.profile.commit_ms / 1e3
        stored = self.store.entries()
        items = [(s.sec_tag, int(s.type), stored.get(s.key, b"")) for s in creds]
        return len(creds), m.set_digest(items)

    def _check_signature(self, decoded: bundle_format.DecodedBundle) -> None:
        from provision.pki.signing import verify_digest

        self._work += self.profile.verify_ms / 1e3
        sig = decoded.signature
        if sig is None:
            raise DeviceFault(m.ErrorCode.BAD_SIGNATURE, "this device applies signed bundles only")
        assert self.signer is not None
        if not verify_digest(self.signer, decoded.digest, sig.key_id, sig.signature):
            raise DeviceFault(m.ErrorCode.BAD_SIGNATURE, "bundle signature does not verify")

    def delete(self, scope: m.DeleteScope, sec_tag: int, slot: int) -> None:
        entries = self.store.entries()
        if scope is m.DeleteScope.ALL:
            doomed = list(entries)
        elif scope is m.DeleteScope.TAG:
            doomed = [k for k in entries if k[0] == sec_tag]
        else:
            doomed = [k for k in entries if k == (sec_tag, slot)]
        if not doomed:
            raise DeviceFault(m.ErrorCode.NOT_FOUND, "nothing to delete")
        self.store.commit(dict.fromkeys(doomed))

    def keygen(self, sec_tag: int, subject: str) -> bytes:
        if not self.keygen_enabled:
            raise DeviceFault(m.ErrorCode.UNSUPPORTED, "this device cannot generate keys")
        from provision.pki.device_keygen import generate_key_and_csr

        cn = self.uid.hex()
        try:
            key_pem, csr_der = generate_key_and_csr(
                f"CN={subject}" if subject and "=" not in subject else subject or None, cn
            )
        except InputError as err:
            raise DeviceFault(m.ErrorCode.MALFORMED, err.message) from None
        self._work += self.profile.keygen_ms / 1e3
        try:
            self.store.commit({(sec_tag, SlotType.CLIENT_KEY): key_pem})
        except StoreFull as err:
            raise DeviceFault(m.ErrorCode.NO_SPACE, str(err)) from None
        return csr_der

    def reset(self) -> None:
        self._reset_requested = True

    def tls_check(self, msg: m.TlsCheck, host_payload: int) -> m.TlsResult:
        """A real mutual-TLS handshake with only the stored slots of msg.sec_tag
        (docs/tls-check.md). Blocks until done, like firmware would."""
        if not self.tls_enabled:
            raise DeviceFault(m.ErrorCode.UNSUPPORTED, "this device cannot run TLS")
        from provision.tls import wire
        from provision.tls.device_side import device_check

        try:
            tls_version = wire.tls_version(msg.tls)
        except InputError as err:
            raise DeviceFault(m.ErrorCode.MALFORMED, err.message) from None
        report = device_check(
            self.store.entries(),
            msg.sec_tag,
            msg.host,
            msg.port,
            tls_version=tls_version,
            timeout=max(msg.timeout_ms, 100) / 1000,
        )
        return m.TlsResult(**wire.result_fields(report, host_payload))


# The native device's own sim options (the rest are the runner's: provision.sim.serve).
OPTIONS: dict[str, str] = {
    "uid": "device id, hex (default: derived from the seed)",
    "signer": "provisioning public key or certificate: apply signed bundles only",
    "keygen": "0: no KEYGEN feature",
    "tls": "0: no device-side TLS check (like the C stub)",
    "lean": "0: no LEAN feature (BEGIN_LEAN, DATA_LEAN), like a device from before it",
    "rates": "baud rates CHANGE_BAUD may switch to, comma-separated (empty: none, like a "
    f"device without the feature; default {DEFAULT_RATES})",
}


def _rates(value: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(r) for r in value.split(",") if r.strip())
    except ValueError:
        raise InputError(f"sim option rates={value!r} is not a list of baud rates") from None
    if any(not 1200 <= r <= 16_000_000 for r in rates) or len(rates) > 255:
        raise InputError(f"sim option rates={value!r}: each rate 1200..16000000, at most 255")
    return rates


def _flag(opts: dict[str, str], name: str) -> bool:
    value = opts.get(name, "1")
    if value not in ("0", "1"):
        raise InputError(f"sim option {name}={value!r} is not 0 or 1")
    return value == "1"


def _check_signer(data: bytes, path: str) -> None:
    """Refuse a signer that could never verify a bundle (not a P-256 key or certificate)."""
    from provision.pki.signing import load_public_key

    key = load_public_key(data, path)  # InputError for what is neither
    if getattr(getattr(key, "curve", None), "name", None) != "secp256r1":
        raise InputError(f"{path}: the signer must be an EC P-256 public key or certificate")


def create(ctx: SimContext) -> NativeDevice:
    return NativeDevice(ctx)
