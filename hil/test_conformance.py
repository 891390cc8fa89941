"""Native-protocol conformance: the same checks for every target (docs/hil.md)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from typing import cast

import pytest

import provision.device
from provision.bundle import format as bundle_format
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.dialects.base import BaudSwitchingSession
from provision.errors import DeviceError, InputError, PolicyError, ProvisionError
from provision.link import messages as m

from .raw import RawLink
from .targets import Target, TargetUnavailable

ROOT_CA, CLIENT_CERT, CLIENT_KEY, PSK = (
    SlotType.ROOT_CA,
    SlotType.CLIENT_CERT,
    SlotType.CLIENT_KEY,
    SlotType.PSK,
)


def blob(seed: int, size: int) -> bytes:
    """Deterministic filler shaped like DER (devices under test store bytes, not parse them)."""
    rng = random.Random(seed)
    return b"\x30\x82" + size.to_bytes(2, "big")[-2:] + rng.randbytes(size - 4)


def device_set(tag: int = 42, seed: int = 1, cert_size: int = 600) -> CredentialSet:
    return CredentialSet.of(
        [
            Slot(tag, ROOT_CA, Encoding.DER, blob(seed, 420)),
            Slot(tag, CLIENT_CERT, Encoding.DER, blob(seed + 1, cert_size)),
            Slot(tag, CLIENT_KEY, Encoding.DER, blob(seed + 2, 138)),
        ]
    )


def listing(dev: provision.device.Device) -> dict[tuple[int, SlotType], tuple[int, bytes]]:
    return {(s.sec_tag, s.type): (s.size, s.sha256) for s in dev.list()}


def expected(cs: CredentialSet) -> dict[tuple[int, SlotType], tuple[int, bytes]]:
    return {s.key: (len(s.data), hashlib.sha256(s.data).digest()) for s in cs}


# --- HELLO -----------------------------------------------------------------------------------


def test_hello_fields(device: provision.device.Device) -> None:
    info = device.info()
    d = info.details
    assert info.dialect == "native"
    assert info.device_id and bytes.fromhex(info.device_id)
    assert info.firmware
    assert d["protocol"] == 1
    assert m.MIN_PAYLOAD <= d["max_payload"] <= m.MAX_PAYLOAD
    assert 1 <= d["window"] <= m.MAX_WINDOW
    assert d["max_bundle"] >= 4096
    assert d["max_slots"] >= 3 and d["max_tags"] >= 1
    assert d["max_slot_size"] >= 2048


def test_hello_is_stable_and_keeps_limits(raw: RawLink) -> None:
    first, second = raw.hello(), raw.hello()
    assert first == second


# --- write / list / verify / read / delete ---------------------------------------------------


def test_write_list_verify(device: provision.device.Device) -> None:
    cs = device_set()
    result = device.write(cs)
    assert {(s.sec_tag, s.type) for s in result.written} == {s.key for s in cs}
    assert listing(device) == expected(cs)
    assert device.verify(cs).ok
    other = device_set(seed=9)
    report = device.verify(other)
    assert not report.ok and len(report.mismatches) == 3


def test_write_replaces_the_tags_in_the_bundle_only(device: provision.device.Device) -> None:
    first = device_set(42, seed=1)
    device.write(first)
    device.write(CredentialSet.of([Slot(7, PSK, Encoding.RAW, b"k" * 32)]))
    smaller = CredentialSet.of([Slot(42, ROOT_CA, Encoding.DER, blob(5, 300))])
    device.write(smaller)
    # Tag 42 is replaced, except its client_key, which a bundle without one leaves in place
    # (a KEYGEN key never leaves the device); tag 7 is untouched.
    key = first.get(42, CLIENT_KEY)
    want = expected(smaller) | {
        (7, PSK): (32, hashlib.sha256(b"k" * 32).digest()),
        (42, CLIENT_KEY): (len(key.data), hashlib.sha256(key.data).digest()),
    }
    assert listing(device) == want
    new_key = CredentialSet.of([Slot(42, CLIENT_KEY, Encoding.DER, blob(6, 121))])
    device.write(new_key)
    assert listing(device) == expected(new_key) | {(7, PSK): want[(7, PSK)]}


def test_read_certificate_back(device: provision.device.Device) -> None:
    if "read" not in device.info().details["features"]:
        pytest.skip("device does not announce READ")
    cs = device_set(cert_size=1500)  # longer than one READ_DATA payload
    device.write(cs)
    assert device.read(42, CLIENT_CERT) == cs.get(42, CLIENT_CERT).data
    with pytest.raises(InputError):
        device.read(42, CLIENT_KEY)


def test_delete_slot_tag_and_all(device: provision.device.Device) -> None:
    device.write(device_set(42))
    device.write(device_set(43, seed=4))
    device.delete(42, CLIENT_CERT)
    assert (42, CLIENT_CERT) not in listing(device) and len(listing(device)) == 5
    device.delete(43)
    assert set(listing(device)) == {(42, ROOT_CA), (42, CLIENT_KEY)}
    with pytest.raises(DeviceError) as err:
        device.delete(43)
    assert err.value.code == "device.not_found"
    device.delete(None)
    assert listing(device) == {}


def test_windowed_transfer_of_a_large_set(device: provision.device.Device) -> None:
    details = device.info().details
    size = min(details["max_slot_size"], details["max_bundle"] - 1200, 12 * 1024)
    cs = CredentialSet.of(
        [
            Slot(1, CLIENT_CERT, Encoding.DER, blob(3, size)),
            Slot(1, ROOT_CA, Encoding.DER, blob(4, 900)),
        ]
    )
    result = device.write(cs)
    assert result.bytes_sent > size
    assert device.verify(cs).ok


def test_keygen_or_a_clear_refusal(url: str, hil_timeout: float) -> None:
    """A device announcing KEYGEN makes a key that never leaves it and returns a CSR; one
    that does not answers KEYGEN with UNSUPPORTED (and the host refuses before asking).
    One connection at a time: a serial port (or the stub's TCP socket) has one host."""
    with provision.device.open(url, dialect="native", timeout=hil_timeout) as dev:
        wipe_all(dev)
        if "keygen" in dev.info().details["features"]:
            csr = dev.keygen(42, "hil-device")
            assert csr[:1] == b"\x30" and len(csr) > 100  # a DER SEQUENCE
            assert (42, CLIENT_KEY) in listing(dev)
            with pytest.raises(InputError):
                dev.read(42, CLIENT_KEY)
            wipe_all(dev)
            return
        with pytest.raises(PolicyError):
            dev.keygen(42)
    raw = RawLink(url, hil_timeout)
    try:
        raw.hello()
        assert error_code(raw.request(m.Keygen(42, 0, "hil-device"))) == m.ErrorCode.UNSUPPORTED
    finally:
        raw.close()


def test_tls_check_only_where_announced(raw: RawLink) -> None:
    info = raw.hello()
    if info.features & m.Feature.TLS_CHECK:
        pytest.skip("device runs TLS_CHECK; tests/tls covers the handshake itself")
    answer = raw.request(m.TlsCheck(42, 8443, 0, 1000, "localhost"))
    assert error_code(answer) == m.ErrorCode.UNSUPPORTED


def test_state_survives_reopening_the_port(url: str, hil_timeout: float) -> None:
    cs = device_set(seed=21)
    with provision.device.open(url, dialect="native", timeout=hil_timeout) as dev:
        wipe_all(dev)
        dev.write(cs)
    with provision.device.open(url, dialect="native", timeout=hil_timeout) as dev:
        assert listing(dev) == expected(cs)
        dev.delete(None)


# --- the protocol underneath: windows, retries, errors ---------------------------------------


def begin(raw: RawLink, bundle: bytes, chunk: int, transfer_id: int = 5) -> m.Message:
    return raw.request(m.Begin(transfer_id, len(bundle), chunk, hashlib.sha256(bundle).digest()))


def test_window_sack_and_out_of_window(raw: RawLink) -> None:
    info = raw.hello()
    chunk = 64
    bundle = bundle_format.encode(device_set(seed=31))
    assert len(bundle) > chunk * (info.window + 2)
    assert begin(raw, bundle, chunk) == m.Ack(5, 0, 0)
    # Chunk 1 before chunk 0: held, reported in the SACK bitmap.
    assert raw.request(m.Data(5, chunk, bundle[chunk : 2 * chunk])) == m.Ack(5, 0, 0b1)
    beyond = chunk * info.window
    nak = raw.request(m.Data(5, beyond, bundle[beyond : beyond + chunk]))
    assert nak == m.Nak(5, 0, m.NakReason.OUT_OF_WINDOW)
    bad = raw.request(m.Data(5, 10, bundle[10 : 10 + chunk]))
    assert bad == m.Nak(5, 0, m.NakReason.BAD_OFFSET)
    assert raw.request(m.Data(5, 0, bundle[:chunk])) == m.Ack(5, 2 * chunk, 0)
    # A duplicate is acknowledged and changes nothing.
    assert raw.request(m.Data(5, 0, bundle[:chunk])) == m.Ack(5, 2 * chunk, 0)
    incomplete = raw.request(m.Commit(5))
    assert isinstance(incomplete, m.Error) and incomplete.code == m.ErrorCode.INCOMPLETE
    for off in range(2 * chunk, len(bundle), chunk):
        ack = raw.request(m.Data(5, off, bundle[off : off + chunk]))
        assert isinstance(ack, m.Ack) and ack.cumulative == min(off + chunk, len(bundle))
    done = raw.request(m.Commit(5))
    assert isinstance(done, m.Committed) and done.slot_count == 3


def test_commit_digest_matches_bundle(raw: RawLink) -> None:
    cs = device_set(seed=41)
    bundle = bundle_format.encode(cs)
    raw.hello()
    begin(raw, bundle, 256, transfer_id=9)
    for off in range(0, len(bundle), 256):
        raw.request(m.Data(9, off, bundle[off : off + 256]))
    done = raw.request(m.Commit(9))
    want = hashlib.sha256(
        b"".join(
            s.sec_tag.to_bytes(4, "little") + bytes([int(s.type)]) + hashlib.sha256(s.data).digest()
            for s in cs
        )
    ).digest()
    assert done == m.Committed(9, 3, want)


def test_retried_request_is_answered_not_repeated(raw: RawLink) -> None:
    raw.hello()
    bundle = bundle_format.encode(device_set(seed=51))
    begin(raw, bundle, 256, transfer_id=3)
    for off in range(0, len(bundle), 256):
        raw.request(m.Data(3, off, bundle[off : off + 256]))
    seq = raw.send(m.Commit(3))
    first = raw.answer(seq)
    raw.send(m.Commit(3), seq=seq)  # the same seq and type: a retry
    assert raw.answer(seq) == first and isinstance(first, m.Committed)
    fresh = raw.request(m.Commit(3))  # a new seq: executed, and the transfer is gone
    assert isinstance(fresh, m.Error) and fresh.code == m.ErrorCode.NO_TRANSFER


def error_code(msg: m.Message) -> int:
    assert isinstance(msg, m.Error), msg
    return msg.code


def test_error_replies(raw: RawLink) -> None:
    E = m.ErrorCode
    raw.hello()
    assert error_code(raw.request(m.Data(77, 0, b"x"))) == E.NO_TRANSFER
    assert error_code(raw.request(m.Commit(77))) == E.NO_TRANSFER
    assert error_code(raw.request(m.Delete(m.DeleteScope.ALL, 0, 0, 0))) == E.GUARD
    assert error_code(raw.request(m.Delete(m.DeleteScope.TAG, 999, 0, 0))) == E.NOT_FOUND
    assert error_code(raw.request(m.Read(42, int(CLIENT_KEY), 0, 100))) == E.FORBIDDEN
    assert error_code(raw.request(m.Read(999, int(ROOT_CA), 0, 100))) == E.NOT_FOUND
    info = raw.hello()
    too_big = info.max_bundle + 1
    assert error_code(raw.request(m.Begin(1, too_big, 128, bytes(32)))) == E.TOO_LARGE
    # Bodies with a good CRC but a bad header or payload.
    raw.send_body(bytes([2, m.MsgType.LIST, 50, 0, 2, 0, 0, 0]))
    assert error_code(raw.answer(50)) == E.UNSUPPORTED_VERSION
    raw.send_body(bytes([1, 0x7E, 51, 0, 0, 0]))
    assert error_code(raw.answer(51)) == E.UNKNOWN_MESSAGE
    raw.send_body(bytes([1, m.MsgType.LIST, 52, 0, 1, 0, 0]))
    assert error_code(raw.answer(52)) == E.MALFORMED


def test_commit_refuses_wrong_digest_and_bad_bundle(raw: RawLink) -> None:
    E = m.ErrorCode
    raw.hello()
    bundle = bundle_format.encode(device_set(seed=61))
    raw.request(m.Begin(4, len(bundle), 256, bytes(32)))  # a digest that cannot match
    for off in range(0, len(bundle), 256):
        raw.request(m.Data(4, off, bundle[off : off + 256]))
    assert error_code(raw.request(m.Commit(4))) == E.DIGEST_MISMATCH
    broken = bytearray(bundle)
    broken[20] ^= 0xFF  # inside the first record: CRC and trailer no longer match
    broken = bytes(broken)
    begin(raw, broken, 256, transfer_id=6)
    for off in range(0, len(broken), 256):
        raw.request(m.Data(6, off, broken[off : off + 256]))
    assert error_code(raw.request(m.Commit(6))) == E.BAD_BUNDLE
    listed = raw.request(m.ListSlots(0))
    assert isinstance(listed, m.ListPage) and listed.total == 0  # nothing applied


def test_reset_forgets_the_transfer_and_keeps_the_store(raw: RawLink) -> None:
    raw.hello()
    kept = bundle_format.encode(device_set(seed=65))
    begin(raw, kept, 256, transfer_id=2)
    for off in range(0, len(kept), 256):
        raw.request(m.Data(2, off, kept[off : off + 256]))
    assert isinstance(raw.request(m.Commit(2)), m.Committed)
    begin(raw, bundle_format.encode(device_set(seed=66)), 256, transfer_id=8)
    assert raw.request(m.Reset()) == m.Ok(m.MsgType.RESET)
    raw.hello()  # asked again until the device is back
    assert error_code(raw.request(m.Data(8, 0, b"x"))) == m.ErrorCode.NO_TRANSFER
    assert len(raw.list_all()) == 3


def test_noise_is_answered_with_nak_and_link_recovers(raw: RawLink) -> None:
    raw.hello()
    raw.send_bytes(b"\x05\x11\x22\x33\x44\x00")  # a frame whose CRC is wrong
    frame = raw.receive()
    assert isinstance(frame, m.Frame) and frame.seq == 0
    assert isinstance(frame.message, m.Nak) and frame.message.reason == m.NakReason.BAD_FRAME
    assert isinstance(raw.request(m.ListSlots(0)), m.ListPage)


def test_transfer_resumes_after_the_link_drops(
    url: str, target: Target, hil_timeout: float
) -> None:
    if not target.reconnect:
        pytest.skip(f"target {target.name}: a new connection is a new device session")
    bundle = bundle_format.encode(device_set(seed=71))
    half = (len(bundle) // 2) // 128 * 128
    first = RawLink(url, hil_timeout)
    first.hello()
    begin(first, bundle, 128, transfer_id=12)
    for off in range(0, half, 128):
        first.request(m.Data(12, off, bundle[off : off + 128]))
    first.close()
    second = RawLink(url, hil_timeout)
    try:
        second.hello()
        assert begin(second, bundle, 128, transfer_id=12) == m.Ack(12, half, 0)
        for off in range(half, len(bundle), 128):
            second.request(m.Data(12, off, bundle[off : off + 128]))
        assert isinstance(second.request(m.Commit(12)), m.Committed)
        second.request(m.Delete(m.DeleteScope.ALL, 0, 0, m.DELETE_ALL_GUARD))
    finally:
        second.close()


# --- line rate (CHANGE_BAUD) -------------------------------------------------------------------


def test_fast_baud_session_switches_and_keeps_working(target: Target, hil_timeout: float) -> None:
    """--fast-baud on a port with a line rate: every rate the device offers is switched to
    and confirmed by HELLO there (a device left behind at the old rate fails that HELLO and
    the session falls back, which the check on `baud` catches); the session works at it and
    switches back. Under QEMU, whose chardev does not pace bytes, the UART's rate register
    is read back after each switch and compared with the chip's documented value."""
    try:
        url = target.rated_line("baud")
    except TargetUnavailable as err:
        pytest.skip(str(err))
    try:
        with provision.device.open(url, dialect="native", baud=115200, timeout=hil_timeout) as dev:
            details = dev.info().details
            if "baud" not in details["features"]:
                pytest.skip(f"target {target.name} does not advertise BAUD in HELLO")
            rates = sorted(details["baud_rates"])
            wipe_all(dev)
        assert 115200 in rates

        def register() -> int | None:
            if "baud_register" not in target.spec:
                return None
            return target.read_register("baud", int(target.spec["baud_register"]))

        def documented(rate: int) -> int | None:
            values = target.spec.get("baud_values")
            return None if values is None else int(values[str(rate)])

        cs = device_set(seed=91)
        with provision.device.open(
            url, dialect="native", baud=115200, fast_baud="auto", timeout=hil_timeout
        ) as dev:
            assert dev.info().details["baud"] == rates[-1]
            assert register() == documented(rates[-1])
            dev.write(cs)
            assert listing(dev) == expected(cs)
            assert dev.verify(cs).ok
            session = cast("BaudSwitchingSession", dev.session)
            for rate in [*rates[:-1], 115200]:
                assert session.switch_baud(rate) == rate
                assert register() == documented(rate)
                assert listing(dev) == expected(cs)
        # The session left the device at the rate the next one opens at.
        with provision.device.open(url, dialect="native", baud=115200, timeout=hil_timeout) as dev:
            assert register() == documented(115200)
            assert listing(dev) == expected(cs)
            wipe_all(dev)
        with pytest.raises(PolicyError, match="cannot switch to 300 baud"):
            provision.device.open(
                url, dialect="native", baud=115200, fast_baud=300, timeout=hil_timeout
            )
    finally:
        target.stop("baud")


# --- restarts and power cuts -----------------------------------------------------------------


def test_store_survives_a_restart(target: Target, needs, hil_timeout: float) -> None:  # type: ignore[no-untyped-def]
    needs("restart")
    cs = device_set(seed=81)
    url = target.start(instance="restart")
    with provision.device.open(url, dialect="native", timeout=hil_timeout) as dev:
        dev.write(cs)
    target.stop("restart")
    url = target.start(instance="restart")
    try:
        with provision.device.open(url, dialect="native", timeout=hil_timeout) as dev:
            assert listing(dev) == expected(cs)
    finally:
        target.stop("restart")


class PowerCutRig:
    """Boots an instance whose flash holds OLD, writes NEW with power cut after N flash
    bytes, boots again and reports which set the device holds."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        # A slow emulator (a loaded CI machine) must not pass for a power cut: where a cut
        # closes the link at once (mps2: QEMU exits), extra retries cost nothing.
        self.retries = int(target.spec.get("cut_retries", 1))
        self.old = device_set(42, seed=91)
        self.new = CredentialSet.of(
            [*device_set(42, seed=95, cert_size=900), Slot(8, PSK, Encoding.RAW, b"p" * 16)]
        )
        self.runs = 0
        url = target.start(instance="cut")
        with provision.device.open(url, dialect="native", timeout=timeout) as dev:
            wipe_all(dev)
            dev.write(self.old)
        target.stop("cut")
        self.flash = target.flash_path("cut")
        self.pristine = self.flash.with_suffix(".pristine")
        shutil.copyfile(self.flash, self.pristine)

    def outcome(self, cut_after: int | None) -> str:
        self.runs += 1
        shutil.copyfile(self.pristine, self.flash)
        url = self.target.start(instance="cut", cut_after=cut_after)
        try:
            with provision.device.open(
                url, dialect="native", timeout=self.timeout, retries=self.retries
            ) as dev:
                dev.write(self.new)
        except (ProvisionError, OSError):
            # The device lost power mid-write: make sure it is off before booting it again.
            assert self.target.wait_power_cut("cut", timeout=5.0)
        self.target.stop("cut")
        url = self.target.start(instance="cut")
        link = RawLink(url, self.timeout)
        try:
            link.hello()
            held = {(e.sec_tag, SlotType(e.slot)): (e.size, e.sha256) for e in link.list_all()}
        finally:
            link.close()
            self.target.stop("cut")
        if held == expected(self.old):
            return "old"
        if held == expected(self.new) | {
            k: v for k, v in expected(self.old).items() if k[0] not in self.new.sec_tags
        }:
            return "new"
        return f"mixed: {sorted(held)}"


def wipe_all(dev: provision.device.Device) -> None:
    try:
        dev.delete(None)
    except DeviceError as err:
        if err.code != "device.not_found":
            raise


@pytest.mark.slow
def test_power_cut_at_any_flash_byte_leaves_old_or_new(
    target: Target, needs, hil_timeout: float, cut_mode: str
) -> None:  # type: ignore[no-untyped-def]
    """Every cut leaves the old set or the new one. Where the power stays off after a cut
    (the C stub), find the first flash byte count N at which the new set survives
    (bisection), check that the cut just before it keeps the old set, and sample cuts below
    it. Where the device reboots on its own and the host finishes the write (the simulator),
    check a spread of cut points."""
    needs("power_cut")
    rig = PowerCutRig(target, hil_timeout)
    assert rig.outcome(None) == "new"
    seen: dict[int, str] = {}

    def run(n: int) -> str:
        if n not in seen:
            seen[n] = rig.outcome(n)
            assert seen[n] in ("old", "new"), f"cut after {n} flash bytes: {seen[n]}"
        return seen[n]

    if not target.spec.get("cut_stays_off"):
        for n in (0, 1, 10, 100, 1000, 3000, 10_000, 30_000, 100_000):
            run(n)
        print(f"{target.name}: {rig.runs} boots, outcomes {sorted(set(seen.values()))}")
        return
    step = 16 if cut_mode == "quick" else 4
    high = 1
    while run(high) == "old":
        high *= step
        assert high < 1 << 24, "the write never completed under a power cut"
    low = high // step if high > 1 else 0
    if cut_mode == "quick":
        print(f"{target.name}: commit completes between flash bytes {low} and {high}")
        return
    while high - low > 1:
        mid = (low + high) // 2
        if run(mid) == "old":
            low = mid
        else:
            high = mid
    threshold = high
    assert threshold > 1 and run(threshold - 1) == "old"
    samples = int(os.environ.get("PROVISION_HIL_CUT_SAMPLES", "4"))
    rng = random.Random(threshold)
    for n in sorted(rng.randrange(0, threshold) for _ in range(samples)):
        assert run(n) == "old", f"cut after {n} flash bytes (commit completes at {threshold})"
    print(f"{target.name}: commit completes at flash byte {threshold}; {rig.runs} boots checked")
