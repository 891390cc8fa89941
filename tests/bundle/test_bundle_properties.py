"""Property tests of the bundle format (hypothesis).

- pack → parse is the identity, and the compiled and checked paths agree on every input;
- any single byte flip or any truncation of a valid bundle is rejected — except a flip
  inside a signature, which decode cannot see: it must leave the content unchanged (the
  signature check against a key catches it, see test_bundle_vectors);
- whatever bytes come in, decode returns or raises BundleError, nothing else, and what
  it accepts re-encodes to exactly the same bytes.

The default run is modest; `pytest -m soak tests/bundle` runs the same properties longer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision import packing as bundle_io
from provision.bundle import format as fmt
from provision.bundle.model import MAX_SEC_TAG, CredentialSet, Slot, SlotFlags, SlotType
from provision.bundle.spec import PackSources, SecretSource, TagSources, load_spec
from provision.errors import BundleError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOAK = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sec_tags = st.one_of(
    st.sampled_from([0, 1, 7, 42, 16842753, MAX_SEC_TAG]), st.integers(0, MAX_SEC_TAG)
)
device_ids = st.one_of(
    st.none(),
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64
    ),
)


@st.composite
def slots(draw: st.DrawFn) -> Slot:
    slot_type = draw(st.sampled_from(list(SlotType)))
    encoding = draw(st.sampled_from(sorted(fmt.ALLOWED_ENCODINGS[slot_type])))
    flags = SlotFlags.NONE
    if slot_type is SlotType.CLIENT_KEY and draw(st.booleans()):
        flags = SlotFlags.ENCRYPTED
    payload = draw(st.binary(min_size=1, max_size=300))
    return Slot(draw(sec_tags), slot_type, encoding, payload, flags)


@st.composite
def credential_sets(draw: st.DrawFn, max_slots: int = 8) -> CredentialSet:
    items = draw(st.lists(slots(), max_size=max_slots))
    unique: dict[tuple[int, SlotType], Slot] = {}
    roots = []
    for s in items:
        if s.type is SlotType.ROOT_CA:
            roots.append(s)
        else:
            unique[s.key] = s
    return CredentialSet.of([*roots, *unique.values()], device_id=draw(device_ids))


signatures = st.one_of(
    st.none(),
    st.builds(
        fmt.BundleSignature, st.binary(min_size=8, max_size=8), st.binary(min_size=64, max_size=64)
    ),
)


def _round_trip(credentials: CredentialSet, signature: fmt.BundleSignature | None) -> None:
    data = fmt.encode(credentials, signature)
    assert data == fmt.build_checked(credentials, signature)
    decoded = fmt.decode(data)
    assert decoded == fmt.decode_checked(data)
    assert decoded.credentials == credentials
    assert decoded.credentials.device_id == credentials.device_id
    assert decoded.signature == signature
    if signature is not None:
        assert decoded.digest == fmt.signing_digest(credentials)


def _flip(data: bytes, index: int, xor: int, signed: bool, original: CredentialSet) -> None:
    mutated = bytearray(data)
    mutated[index] ^= xor
    sig_start = len(data) - fmt.KEY_ID_SIZE - fmt.SIGNATURE_SIZE
    if signed and index >= sig_start:
        # Not covered by the digest: decode accepts it, the content must be untouched.
        decoded = fmt.decode(bytes(mutated))
        assert decoded.credentials == original
        assert decoded.signature is not None
        assert decoded.digest == fmt.signing_digest(original)
        return
    with pytest.raises(BundleError):
        fmt.decode(bytes(mutated))


def _any_bytes(data: bytes) -> None:
    try:
        decoded = fmt.decode(data)
    except BundleError as err:
        assert "\n" not in err.message and err.code
        with pytest.raises(BundleError) as checked:
            fmt.decode_checked(data)
        assert checked.value.code == err.code
        return
    assert fmt.encode(decoded.credentials, decoded.signature) == data
    assert fmt.decode_checked(data) == decoded


@FAST
@given(credential_sets(), signatures)
def test_round_trip(credentials: CredentialSet, signature) -> None:
    _round_trip(credentials, signature)


@FAST
@given(credential_sets(max_slots=4), st.booleans(), st.data())
def test_any_byte_flip_is_rejected(credentials: CredentialSet, signed: bool, data) -> None:
    sig = fmt.BundleSignature(b"k" * 8, b"s" * 64) if signed else None
    raw = fmt.encode(credentials, sig)
    index = data.draw(st.integers(0, len(raw) - 1), label="index")
    xor = data.draw(st.integers(1, 255), label="xor")
    _flip(raw, index, xor, signed, credentials)


def test_every_single_bit_flip_of_a_small_bundle() -> None:
    """Exhaustive on one small signed bundle: every byte, every bit."""
    creds = CredentialSet.of(
        [
            Slot(3, SlotType.ROOT_CA, fmt.Encoding.DER, b"abc"),
            Slot(3, SlotType.CLIENT_KEY, fmt.Encoding.PEM, b"k", SlotFlags.ENCRYPTED),
            Slot(3, SlotType.PSK, fmt.Encoding.RAW, b"p"),
        ],
        device_id="d1",
    )
    raw = fmt.encode(creds, fmt.BundleSignature(b"k" * 8, b"s" * 64))
    for index in range(len(raw)):
        for bit in range(8):
            _flip(raw, index, 1 << bit, True, creds)


@FAST
@given(credential_sets(max_slots=4), signatures, st.data())
def test_any_truncation_is_rejected(credentials: CredentialSet, signature, data) -> None:
    raw = fmt.encode(credentials, signature)
    cut = data.draw(st.integers(0, len(raw) - 1), label="length")
    with pytest.raises(BundleError):
        fmt.decode(raw[:cut])


def test_every_truncation_of_a_small_bundle() -> None:
    creds = CredentialSet.of([Slot(1, SlotType.PSK_IDENTITY, fmt.Encoding.RAW, b"id")], "x")
    for raw in (fmt.encode(creds), fmt.encode(creds, fmt.BundleSignature(b"k" * 8, b"s" * 64))):
        for cut in range(len(raw)):
            with pytest.raises(BundleError):
                fmt.decode(raw[:cut])


@FAST
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_bundle_error(data: bytes) -> None:
    _any_bytes(data)


@FAST
@given(credential_sets(max_slots=3), st.data())
def test_mutated_bundles_parse_or_raise_bundle_error(credentials: CredentialSet, data) -> None:
    raw = bytearray(fmt.encode(credentials))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        i = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "set" and raw:
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=4))
        elif raw:
            del raw[i]
    _any_bytes(bytes(raw))


@pytest.mark.soak
@SOAK
@given(credential_sets(), signatures, st.data())
def test_soak_flip_truncate_round_trip(credentials: CredentialSet, signature, data) -> None:
    _round_trip(credentials, signature)
    raw = fmt.encode(credentials, signature)
    _flip(
        raw,
        data.draw(st.integers(0, len(raw) - 1)),
        data.draw(st.integers(1, 255)),
        signature is not None,
        credentials,
    )
    with pytest.raises(BundleError):
        fmt.decode(raw[: data.draw(st.integers(0, len(raw) - 1))])
    _any_bytes(data.draw(st.binary(max_size=400)))


# --- files → bundle → files → bundle ------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"


@st.composite
def pack_sources(draw: st.DrawFn) -> PackSources:
    tags = draw(st.lists(sec_tags, min_size=1, max_size=3, unique=True))
    out = []
    for tag in tags:
        # root-ca.pem and root-ca.der are the same certificate: pick at most one of them
        roots = draw(st.lists(st.sampled_from(["root-ca", "other-root"]), max_size=2, unique=True))
        roots = [r + (draw(st.sampled_from([".pem", ".der"])) if r == "root-ca" else ".pem")
                 for r in roots]  # fmt: skip
        cert = draw(st.sampled_from([None, "device.pem", "device.der"]))
        key = draw(st.sampled_from([None, "device.key", "device.key.der", "device-encrypted.key"]))
        psk = draw(st.booleans())
        identity = draw(st.one_of(st.none(), st.text("abcdefgh-0123", min_size=1, max_size=20)))
        if not (roots or cert or key or psk or identity):
            roots = ["root-ca.pem"]
        out.append(
            TagSources(
                tag,
                root_ca=tuple(FIXTURES / r for r in roots),
                client_cert=FIXTURES / cert if cert else None,
                client_key=FIXTURES / key if key else None,
                key_password=SecretSource(file=FIXTURES / "device-encrypted.pw")
                if key == "device-encrypted.key"
                else None,
                psk=SecretSource(file=FIXTURES / "psk.hex", hex=True) if psk else None,
                psk_identity=identity.encode() if identity else None,
            )
        )
    return PackSources(
        tuple(out),
        device_id=draw(st.one_of(st.none(), st.just("dev-0001"))),
        encoding=draw(st.sampled_from(["keep", "pem"])),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack_sources())
def test_pack_unpack_pack_gives_the_same_bundle(sources: PackSources) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp) / "a.prvb", Path(tmp) / "b.prvb"
        # force: a random subset need not pass the pre-flight check (e.g. no root for a cert)
        result = bundle_io.pack(sources, first, force=True)
        decoded = fmt.decode(first.read_bytes())
        assert decoded.credentials == result.credentials
        bundle_io.unpack(first, Path(tmp) / "files")
        bundle_io.pack(load_spec(Path(tmp) / "files" / "bundle.toml"), second, force=True)
        assert second.read_bytes() == first.read_bytes()
