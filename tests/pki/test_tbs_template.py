"""The TBS template fast path makes the very bytes CertificateBuilder makes.

For random inputs (CNs of any UTF-8 around the DER length boundaries, serials of 1-20
octets, dates on both sides of 2050, several CA and subject shapes) the template's TBS must
equal the builder's TBS for the same inputs, and the certificate must verify under the CA
with cryptography's verifier and `openssl verify -purpose sslclient`. What the template does
not cover must fall back to the builder.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from provision.errors import InputError
from provision.pki import authority as authority_module
from provision.pki import tbs_template
from provision.pki.authority import Authority, SubjectTemplate, create_root_ca
from provision.pki.keys import KeyType, generate_key, public_key_der, serialize_private_key
from provision.pki.pem import pem_armor
from provision.pki.profiles import Profile, extensions, signature_hash
from provision.pki.tbs_template import der_validity, pkcs8_ec_point

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
EARLIEST = datetime(1950, 1, 1)
LATEST = datetime(9999, 12, 31, 23, 59, 59)


def _wide_ca(key, name: str, parent: tuple[Authority, ...] = ()) -> Authority:
    """A CA valid 1950-9999, so that any leaf date can be verified under it."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_key, issuer_name, aki = key, subject, None
    if parent:
        issuer_key, issuer_name = parent[0].key, parent[0].cert.subject
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(parent[0].cert.public_key())
    builder = x509.CertificateBuilder(
        issuer_name=issuer_name,
        subject_name=subject,
        public_key=key.public_key(),
        serial_number=x509.random_serial_number(),
        not_valid_before=EARLIEST,
        not_valid_after=LATEST,
        extensions=extensions(
            Profile.INTERMEDIATE_CA if parent else Profile.ROOT_CA,
            key.public_key(),
            authority_key_id=aki,
            path_length=0 if parent else None,
        ),
    )
    cert = builder.sign(issuer_key, signature_hash(issuer_key))
    return Authority(cert, key, tuple(p.cert for p in parent))


_P256_ROOT = _wide_ca(generate_key(KeyType.P256), "Template Root P-256")
CAS = {
    "p256": _P256_ROOT,
    "p384": _wide_ca(generate_key(KeyType.P384), "Template Root P-384 (SHA-384)"),
    "rsa": _wide_ca(generate_key(KeyType.RSA2048), "Template Root RSA"),
    "intermediate": _wide_ca(generate_key(KeyType.P256), "Template Issuing", (_P256_ROOT,)),
}
# Subject keys: several of each curve, drawn by index (keygen is not what is tested).
KEYS = {
    KeyType.P256: [generate_key(KeyType.P256) for _ in range(4)],
    KeyType.P384: [generate_key(KeyType.P384) for _ in range(2)],
}
# Fixed RDNs around the CN: none, non-ASCII text, a PrintableString country, a multi-valued
# RDN, and values long enough to push the subject past the 127/128 and 255/256 lengths.
SUBJECTS = [
    None,
    "O=Acme,CN={device_id}",
    "C=DE,O=Müller & Söhne GmbH,OU=Linie 3 · Prüfstand,CN={device_id},L=Zürich",
    "O=Acme+OU=Line 3,CN={device_id}",
    "O=" + "o" * 90 + ",CN={device_id}",
    "O=" + "€" * 60 + ",OU=" + "x" * 64 + ",CN={device_id},ST=" + "s" * 40,
]


def _cn_of_octets(n: int, wide: str) -> str:
    """A CN of exactly n UTF-8 octets, mixing `wide` characters with ASCII."""
    size = len(wide.encode())
    count = min(n // size, n // (2 * size) + 1) if wide else 0
    return wide * count + "d" * (n - count * size)


cns = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=140),
    st.builds(
        _cn_of_octets,
        st.sampled_from([1, 63, 64, 65, 116, 117, 118, 119, 120, 127, 128, 129, 255, 256, 257]),
        st.sampled_from(["", "é", "€", "😀"]),
    ),
)
serials = st.one_of(
    st.integers(1, (1 << 159) - 1),
    # 1..19 octets with the top bit set: DER puts a 0x00 sign octet in front
    st.integers(1, 19).flatmap(lambda n: st.integers(1 << (8 * n - 1), (1 << (8 * n)) - 1)),
    # 20 octets without a sign octet (RFC 5280's limit: at most 159 bits)
    st.integers(1 << 152, (1 << 159) - 1),
)
times = st.one_of(
    st.datetimes(min_value=EARLIEST, max_value=LATEST - timedelta(days=1)),
    st.sampled_from(
        [
            EARLIEST,
            datetime(1999, 12, 31, 23, 59, 59, 999999),
            datetime(2049, 12, 31, 23, 59, 59, 999999),
            datetime(2050, 1, 1),
            datetime(2050, 1, 1, 0, 0, 0, 1),
        ]
    ),
)


def _name(subject: str | None, cn: str) -> x509.Name:
    # The CN is set without cryptography's 64-character check: the encoder must be right
    # for any length, even the ones a device id may not have.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attr = x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)
    if subject is None:
        return x509.Name([attr])
    template = SubjectTemplate.parse(subject)
    return x509.Name([*template._before, x509.RelativeDistinguishedName([attr]), *template._after])


def _verify_with_cryptography(ca: Authority, leaf: x509.Certificate, at: datetime) -> None:
    roots = [ca.chain[-1]]
    # Device certificates name the device in the CN; the web-PKI profile would want a SAN.
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, x509.verification.Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store(roots))
        .time(at)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
        .build_client_verifier()
    )
    chain = verifier.verify(leaf, list(ca.chain[:-1]))
    assert chain.chain[0] == leaf


def _verify_with_openssl(ca: Authority, leaf: x509.Certificate, at: datetime, d: Path) -> None:
    pem = serialization.Encoding.PEM
    (d / "root.pem").write_bytes(ca.chain[-1].public_bytes(pem))
    (d / "untrusted.pem").write_bytes(b"".join(c.public_bytes(pem) for c in ca.chain[:-1]))
    (d / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    epoch = (at - datetime(1970, 1, 1)) // timedelta(seconds=1)
    args = [OPENSSL, "verify", "-purpose", "sslclient", "-x509_strict", "-attime", str(epoch)]
    args += ["-CAfile", str(d / "root.pem")]
    if len(ca.chain) > 1:
        args += ["-untrusted", str(d / "untrusted.pem")]
    r = subprocess.run([*args, str(d / "leaf.pem")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip().endswith(": OK"), r.stdout + r.stderr


@needs_openssl
@pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning")
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    ca_name=st.sampled_from(sorted(CAS)),
    key_type=st.sampled_from([KeyType.P256, KeyType.P384]),
    key_index=st.integers(0, 3),
    subject=st.sampled_from(SUBJECTS),
    cn=cns,
    serial=serials,
    not_before=times,
    lifetime=st.one_of(
        st.timedeltas(timedelta(seconds=1), timedelta(days=36500)),
        st.sampled_from([timedelta(days=365), timedelta(seconds=1)]),
    ),
)
@example(  # UTCTime -> GeneralizedTime inside one certificate, 20-octet serial, 128-octet CN
    ca_name="p256",
    key_type=KeyType.P256,
    key_index=0,
    subject=None,
    cn="é" * 64,
    serial=(1 << 159) - 1,
    not_before=datetime(2049, 12, 31, 23, 59, 59),
    lifetime=timedelta(seconds=1),
)
def test_template_tbs_is_the_builders_and_verifies(
    tmp_path_factory, ca_name, key_type, key_index, subject, cn, serial, not_before, lifetime
) -> None:
    # Compared before adding: past year 9999 the sum itself overflows.
    assume(lifetime <= LATEST - not_before)
    not_after = not_before + lifetime
    ca = CAS[ca_name]
    template_subject = SubjectTemplate.parse(subject) if subject else None
    template = ca.client_template(key_type, template_subject)
    assert template is not None
    key = KEYS[key_type][key_index % len(KEYS[key_type])]
    name = _name(subject, cn)

    expected = ca._client_builder(name, key.public_key(), serial, not_before, not_after)
    tbs = template.tbs(cn, public_key_der(key), serial, der_validity(not_before, not_after))
    assert tbs == expected.tbs_certificate_bytes

    cert = x509.load_der_x509_certificate(template.certificate(tbs))
    assert cert.tbs_certificate_bytes == expected.tbs_certificate_bytes
    assert cert.signature_algorithm_oid == expected.signature_algorithm_oid
    assert cert.subject == name and cert.serial_number == serial
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(ca.cert)
    # The certificate holds whole seconds; openssl counts notAfter itself as expired.
    at = not_before.replace(microsecond=0)
    _verify_with_cryptography(ca, cert, at)
    _verify_with_openssl(ca, cert, at, tmp_path_factory.mktemp("verify"))


_2049_ROOT = create_root_ca("Root of 2049", now=datetime(2049, 6, 1, tzinfo=UTC))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    device_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}", fullmatch=True),
    serial=serials,
    subject=st.sampled_from(SUBJECTS),
    organization=st.sampled_from([None, "Acme", "Ünïcødé Org"]),
    key_type=st.sampled_from([KeyType.P256, KeyType.P384]),
    now=st.datetimes(
        min_value=datetime(2049, 6, 1),
        max_value=datetime(2050, 6, 1),
        timezones=st.just(UTC),
    ),
    days=st.integers(1, 400),
)
def test_issue_client_matches_the_builder(
    device_id, serial, subject, organization, key_type, now, days
) -> None:
    """The public API on the fast path: same TBS as the builder's _build for the same
    inputs (validity from `now`, `days` and the CA's end, which clamps some of them)."""
    assume(not (subject and organization))
    ca = _2049_ROOT
    template = SubjectTemplate.parse(subject) if subject else None
    key, cert = ca.issue_client(
        device_id,
        key_type=key_type,
        days=days,
        organization=organization,
        subject=template,
        now=now,
        serial=serial,
    )
    assert ca.client_template(key_type, template, organization) is not None
    name = template.name(device_id) if template else authority_module._name(device_id, organization)
    expected = ca._build(Profile.CLIENT, name, key.public_key(), days, now=now, serial=serial)
    assert cert.tbs_certificate_bytes == expected.tbs_certificate_bytes
    cert.verify_directly_issued_by(ca.cert)


def test_client_profile_on_the_fast_path(root: Authority) -> None:
    key, cert = root.issue_client("dev-fast-1")
    assert root.client_template(KeyType.P256) is not None
    assert cert.subject.rfc4514_string() == "CN=dev-fast-1"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = root.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest
    cert.verify_directly_issued_by(root.cert)


def test_dates_cut_to_the_second_match_the_builder(monkeypatch) -> None:
    """Issued with the clock: the template's cached validity (one per second) equals what
    the builder makes from the exact time, including the clamp to the CA's notAfter."""
    ca = create_root_ca("Short CA", days=30)
    clock = datetime(2030, 5, 6, 7, 8, 9, 987654, tzinfo=UTC)
    monkeypatch.setattr(authority_module.time, "time", clock.timestamp)
    for days in (1, 29, 365):  # 365 outlives the CA: clamped
        key, cert = ca.issue_client("dev-clock", days=days, serial=7)
        expected = ca._build(
            Profile.CLIENT, cert.subject, key.public_key(), days, now=clock, serial=7
        )
        assert cert.tbs_certificate_bytes == expected.tbs_certificate_bytes
    assert cert.not_valid_after_utc == ca.cert.not_valid_after_utc
    assert cert.not_valid_before_utc == clock.replace(microsecond=0) - timedelta(minutes=5)


def test_csr_signing_uses_the_template(intermediate: Authority) -> None:
    from provision.pki.csr import create_csr

    device_key = generate_key(KeyType.P256)
    template = SubjectTemplate.parse("O=Acme,OU=Line 3,CN={device_id}")
    cert = intermediate.sign_request(
        create_csr(device_key, "dev-csr-9"), subject=template, serial=0x80
    )
    assert intermediate.client_template(KeyType.P256, template) is not None
    assert cert.subject == template.name("dev-csr-9")
    assert cert.serial_number == 0x80 and cert.public_key() == device_key.public_key()
    cert.verify_directly_issued_by(intermediate.cert)


@pytest.mark.parametrize(
    ("key_type", "subject"),
    [
        (KeyType.RSA2048, None),  # other key types: the builder (keyEncipherment, RSA SPKI)
        (KeyType.P256, "O=Acme,CN={device_id}+OU=Line 3"),  # CN in a multi-valued RDN
    ],
)
def test_uncovered_shapes_fall_back_to_the_builder(root, key_type, subject) -> None:
    template = SubjectTemplate.parse(subject) if subject else None
    assert root.client_template(key_type, template) is None
    key, cert = root.issue_client("dev-slow", key_type=key_type, subject=template)
    assert cert.subject == (template.name("dev-slow") if template else _name(None, "dev-slow"))
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(root.cert)
    issued = root.issue_client_bytes("dev-slow", key_type=key_type, subject=template)
    assert issued.certificate().public_key() == issued.private_key().public_key()


def test_ed25519_ca_falls_back_to_the_builder() -> None:
    ca = create_root_ca("Ed CA", key_type=KeyType.ED25519, allow_ed25519=True)
    assert ca.client_template(KeyType.P256) is None
    _, cert = ca.issue_client("dev-ed-ca")
    cert.verify_directly_issued_by(ca.cert)


def test_given_key_of_another_curve_falls_back() -> None:
    ca = create_root_ca("Curve CA")
    key = ec.generate_private_key(ec.SECP521R1())
    _, cert = ca.issue_client("dev-521", key=key)
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(ca.cert)


def test_a_template_that_differs_from_the_builder_is_not_used(monkeypatch) -> None:
    """The probes catch an encoder that is wrong: the authority then keeps the builder."""
    wrong = tbs_template.der_time

    def off_by_a_second(dt: datetime) -> bytes:
        return wrong(dt + timedelta(seconds=1))

    monkeypatch.setattr(tbs_template, "der_time", off_by_a_second)
    ca = create_root_ca("Checked CA")
    assert ca.client_template(KeyType.P256) is None
    _, cert = ca.issue_client("dev-checked", now=datetime(2031, 1, 1, tzinfo=UTC))
    assert cert.not_valid_before_utc == datetime(2030, 12, 31, 23, 55, tzinfo=UTC)
    cert.verify_directly_issued_by(ca.cert)


def test_issue_client_bytes(root: Authority) -> None:
    issued = root.issue_client_bytes("dev-bytes-1", serial=0xFF)
    cert = issued.certificate()
    key = issued.private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert cert.public_key() == key.public_key()
    assert cert.serial_number == 0xFF and cert.subject.rfc4514_string() == "CN=dev-bytes-1"
    cert.verify_directly_issued_by(root.cert)
    # The PEM is what cryptography writes for the same key and certificate.
    assert issued.key_pem == serialize_private_key(key)
    assert issued.cert_pem == cert.public_bytes(serialization.Encoding.PEM)
    assert issued.key_der == serialize_private_key(key, encoding="der")
    assert "PRIVATE" not in repr(issued) and issued.key_der.hex() not in repr(issued)


@pytest.mark.parametrize("key_type", [KeyType.P256, KeyType.P384])
def test_public_point_from_pkcs8(key_type: KeyType) -> None:
    key = generate_key(key_type)
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    der = serialize_private_key(key, encoding="der")
    assert pkcs8_ec_point(der, len(point)) == point
    # Anything that does not end in the [1] publicKey BIT STRING is refused.
    assert pkcs8_ec_point(der[:-1], len(point)) is None
    assert pkcs8_ec_point(der, len(point) + 1) is None
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    rsa_der = other.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert pkcs8_ec_point(rsa_der, len(point)) is None
    ed_der = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert pkcs8_ec_point(ed_der, len(point)) is None


def test_dates_before_1950_are_an_input_error(root: Authority) -> None:
    # cryptography's signer panics on them; the builder path and the template path both
    # refuse first.
    with pytest.raises(InputError, match="1950"):
        root.issue_client("dev-old", now=datetime(1950, 1, 1, 0, 1, tzinfo=UTC))
    with pytest.raises(InputError, match="1950"):
        root.issue_client("dev-old", key_type=KeyType.RSA2048, now=datetime(1949, 1, 1, tzinfo=UTC))


@given(st.binary(max_size=300))
def test_pem_armor_is_rfc7468_text(der: bytes) -> None:
    import base64

    pem = pem_armor("CERTIFICATE", der)
    lines = pem.split(b"\n")
    assert lines[0] == b"-----BEGIN CERTIFICATE-----" and lines[-2] == b"-----END CERTIFICATE-----"
    assert all(len(line) <= 64 for line in lines[1:-2])
    assert base64.b64decode(b"".join(lines[1:-2])) == der


def test_keys_of_other_types_never_fit_a_template() -> None:
    template = _P256_ROOT.client_template(KeyType.P256)
    assert template is not None
    validity = der_validity(datetime(2030, 1, 1), datetime(2031, 1, 1))
    others = [
        generate_key(KeyType.P384),
        ec.generate_private_key(ec.SECP256K1()),
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
    ]
    for key in others:
        assert template.tbs("dev-x", public_key_der(key), 5, validity) is None
        assert template.issue("dev-x", public_key_der(key), 5, validity) is None
    compressed = (
        generate_key(KeyType.P256)
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    )
    assert template.tbs("dev-x", template.spki_prefix[:-1] + compressed, 5, validity) is None


def test_given_key_decides_the_template(root: Authority) -> None:
    key = generate_key(KeyType.P384)
    got_key, cert = root.issue_client("dev-given", key=key, key_type=KeyType.P256)
    assert got_key is key and cert.public_key() == key.public_key()
    assert root.client_template(KeyType.P384) is not None
    cert.verify_directly_issued_by(root.cert)


@pytest.mark.parametrize("key_type", [KeyType.P384, KeyType.RSA2048])
def test_csrs_of_each_key_type(intermediate: Authority, key_type: KeyType) -> None:
    from provision.pki.csr import create_csr

    device_key = generate_key(key_type)
    cert = intermediate.sign_request(create_csr(device_key, "dev-csr-kt"), serial=12345)
    assert cert.public_key() == device_key.public_key()
    assert cert.serial_number == 12345
    assert cert.subject.rfc4514_string() == "CN=dev-csr-kt"
    cert.verify_directly_issued_by(intermediate.cert)
