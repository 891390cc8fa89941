"""Certificate authorities: create a root (and intermediate), issue server and device
certificates, sign CSRs under policy.

An `Authority` keeps its key object and precomputed authority key identifier, so issuing
many certificates in one process does no re-parsing. Device certificates with EC keys come
from a TBS template made once per key type and subject shape (tbs_template.py): the same
bytes as CertificateBuilder, about twice as fast (see bench/bench_pki.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Final, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provision.errors import InputError, PolicyError, clip
from provision.pki.certs import cert_der, cert_pem, common_name, is_ca, load_certificates
from provision.pki.keys import (
    DEFAULT_KEY_TYPE,
    KeyType,
    PrivateKey,
    PublicKey,
    describe_key,
    generate_key,
    key_type_of,
    load_private_key,
    public_key_der,
    serialize_private_key,
)
from provision.pki.pem import pem_armor
from provision.pki.profiles import Profile, extensions, parse_san, signature_hash
from provision.pki.tbs_template import ClientTemplate, der_validity

# Clocks on devices and servers drift; a certificate valid from "now" fails on a peer that
# is a minute behind.
BACKDATE = timedelta(minutes=5)
DEFAULT_CA_DAYS = 3650
DEFAULT_LEAF_DAYS = 365
# Key types sign_request accepts in a CSR unless told otherwise.
CSR_KEY_TYPES = (KeyType.P256, KeyType.P384, KeyType.RSA2048, KeyType.RSA3072, KeyType.RSA4096)
MAX_DEVICE_ID = 64
# RFC 5280 times (UTCTime from 1950); cryptography cannot encode earlier ones.
_EARLIEST = datetime(1950, 1, 1)


class _Missing(Enum):
    NOT_MADE = 0  # a sentinel mypy narrows: no template has been made for this key yet


_NOT_MADE: Final = _Missing.NOT_MADE
# RFC 5280 4.1.2.2: a serial is a positive INTEGER of at most 20 octets; DER spends the top
# bit of the first octet on the sign, so 159 bits of value.
MAX_SERIAL_BITS = 159
DEVICE_ID_FIELD = "{device_id}"
# Stands in for {device_id} while the template is parsed: not a value anyone would write.
_PLACEHOLDER = "provision-device-id-placeholder-7f3a"
# A device id becomes a CN: keep it to characters every TLS stack and registry accepts.
# (The length is in the pattern: one fullmatch per device on a line.)
_DEVICE_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:@-]{{0,{MAX_DEVICE_ID - 1}}}")
# Device key types the TBS template covers (an EC point spliced into a fixed SPKI).
_CURVES: dict[KeyType, ec.EllipticCurve] = {
    KeyType.P256: ec.SECP256R1(),
    KeyType.P384: ec.SECP384R1(),
}


def validate_device_id(device_id: str) -> str:
    """A device id as pack and issue accept it. Too long is refused by policy (exit 6, as
    docs/bundle-format.md says); other characters are bad input (exit 3)."""
    if isinstance(device_id, str) and len(device_id) > MAX_DEVICE_ID:
        raise PolicyError(
            f"device id {clip(device_id, 40)!r} is too long: at most {MAX_DEVICE_ID} characters"
        )
    if not isinstance(device_id, str) or not _DEVICE_ID.fullmatch(device_id):
        raise InputError(
            f"device id {clip(device_id, 40)!r} is not valid: 1-{MAX_DEVICE_ID} characters of "
            "letters, digits and . _ : @ -, starting with a letter or digit"
        )
    return device_id


def _naive_utc(dt: datetime) -> datetime:
    if dt.tzinfo is not timezone.utc:
        dt = dt.astimezone(timezone.utc)
    return dt.replace(tzinfo=None)


def name_attribute(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute:
    """One subject attribute from user text; a value X.509 cannot hold (RFC 5280 upper
    bounds: a common name or organization at most 64 characters, none empty) is refused by
    policy (exit 6) with the value clipped, not a ValueError from cryptography (exit 70)."""
    try:
        return x509.NameAttribute(oid, value)
    except ValueError as err:
        label = getattr(oid, "_name", None) or oid.dotted_string
        raise PolicyError(f"subject {label} {clip(value, 40)!r}: {err}") from None


def _name(cn: str, organization: str | None = None) -> x509.Name:
    attrs = []
    if organization:
        attrs.append(name_attribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(name_attribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def check_serial(serial: int) -> int:
    """A caller-chosen certificate serial (e.g. from the registry): positive, ≤ 20 octets."""
    if isinstance(serial, bool) or not isinstance(serial, int):
        raise InputError(f"certificate serial must be an integer, not {type(serial).__name__}")
    if serial <= 0:
        raise InputError(f"certificate serial must be positive, not {serial}")
    if serial.bit_length() > MAX_SERIAL_BITS:
        raise InputError(
            f"certificate serial of {serial.bit_length()} bits does not fit in 20 octets "
            f"(at most {MAX_SERIAL_BITS} bits)"
        )
    return serial


@dataclass(frozen=True)
class SubjectTemplate:
    """A device certificate subject such as `O=Acme,OU=Line 3,CN={device_id}`.

    RFC 4514 attribute syntax (escapes, `+` for multi-valued RDNs, dotted OIDs), but written
    most significant first, as OpenSSL's `-subj` and certificate viewers show it: the RDNs
    go into the certificate in the written order (CN last, as is usual), so
    `Name.rfc4514_string()` of the result lists them reversed. `{device_id}` must be the
    whole value of the one CN; every other attribute is fixed text.
    """

    text: str
    _before: tuple[x509.RelativeDistinguishedName, ...] = field(repr=False, compare=False)
    _cn_rdn: tuple[x509.NameAttribute, ...] = field(repr=False, compare=False)
    _after: tuple[x509.RelativeDistinguishedName, ...] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> SubjectTemplate:
        def bad(why: str) -> InputError:
            return InputError(
                f"subject {text!r}: {why} (a template is attributes like "
                "O=Acme,OU=Line 3,CN={device_id})"
            )

        if text.count(DEVICE_ID_FIELD) != 1:
            raise bad(f"needs {DEVICE_ID_FIELD} exactly once, as the CN")
        try:
            parsed = x509.Name.from_rfc4514_string(text.replace(DEVICE_ID_FIELD, _PLACEHOLDER))
        except ValueError as err:
            detail = str(err) or "not RFC 4514 attributes (TYPE=value, comma separated)"
            raise bad(detail) from None
        rdns = list(reversed(parsed.rdns))  # written order = certificate order
        cn_at = None
        for i, rdn in enumerate(rdns):
            for attr in rdn:
                value = attr.value if isinstance(attr.value, str) else ""
                if attr.oid == NameOID.COMMON_NAME:
                    if value != _PLACEHOLDER or cn_at is not None:
                        raise bad(f"the CN must be exactly {DEVICE_ID_FIELD}, and only one CN")
                    cn_at = i
                elif not value.strip():
                    raise bad(f"{attr.rfc4514_attribute_name} is empty")
                elif _PLACEHOLDER in value or "{" in value or "}" in value:
                    raise bad(f"only {DEVICE_ID_FIELD} may be substituted, and only in the CN")
        if cn_at is None:
            raise bad(f"needs CN={DEVICE_ID_FIELD}")
        return cls(text, tuple(rdns[:cn_at]), tuple(rdns[cn_at]), tuple(rdns[cn_at + 1 :]))

    def name(self, device_id: str) -> x509.Name:
        """The subject for `device_id` (checked with validate_device_id)."""
        validate_device_id(device_id)
        cn_rdn = x509.RelativeDistinguishedName(
            x509.NameAttribute(NameOID.COMMON_NAME, device_id)
            if a.oid == NameOID.COMMON_NAME
            else a
            for a in self._cn_rdn
        )
        return x509.Name([*self._before, cn_rdn, *self._after])

    def shape(self) -> _SubjectShape | None:
        """The fixed RDNs around a single-valued CN RDN; None when the CN shares its RDN
        (a multi-valued RDN is a DER SET OF, sorted by encoding: it depends on the CN)."""
        if len(self._cn_rdn) != 1:
            return None
        return (self._before, self._after)


# The RDNs before and after the CN RDN of a device subject.
_SubjectShape = tuple[
    tuple[x509.RelativeDistinguishedName, ...], tuple[x509.RelativeDistinguishedName, ...]
]


def _subject_shape(
    subject: SubjectTemplate | None, organization: str | None
) -> _SubjectShape | None:
    if subject is not None:
        return subject.shape()
    if organization:
        o = name_attribute(NameOID.ORGANIZATION_NAME, organization)
        return ((x509.RelativeDistinguishedName([o]),), ())
    return ((), ())


DEFAULT_SUBJECT = SubjectTemplate.parse(f"CN={DEVICE_ID_FIELD}")


class ClientCredential(NamedTuple):
    """A device key and its certificate as DER (see Authority.issue_client_bytes).

    A NamedTuple: made once per device on a line, it costs less than a frozen dataclass.
    """

    key_der: bytes  # unencrypted PKCS#8: never in a repr or a log
    cert_der: bytes

    @property
    def key_pem(self) -> bytes:
        return pem_armor("PRIVATE KEY", self.key_der)

    @property
    def cert_pem(self) -> bytes:
        return pem_armor("CERTIFICATE", self.cert_der)

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.cert_der)

    def private_key(self) -> PrivateKey:
        return load_private_key(self.key_der, None, "issued key")

    def __repr__(self) -> str:
        return f"ClientCredential(cert_der=<{len(self.cert_der)} bytes>, key_der=<hidden>)"


def _check_days(days: int) -> int:
    if not 1 <= days <= 36500:
        raise InputError(f"validity of {days} days is out of range (1..36500)")
    return days


def check_key_type(key_type: KeyType, allow_ed25519: bool) -> KeyType:
    if type(key_type) is not KeyType:
        key_type = KeyType(key_type)
    if key_type is KeyType.ED25519 and not allow_ed25519:
        raise PolicyError(
            "Ed25519 keys need --allow-ed25519: most device TLS stacks cannot use them"
        )
    return key_type


@dataclass(frozen=True)
class Authority:
    """A CA that can sign: its certificate, key, and the certificates above it (to the root)."""

    cert: x509.Certificate
    key: PrivateKey = field(repr=False)
    parents: tuple[x509.Certificate, ...] = ()
    _aki: x509.AuthorityKeyIdentifier = field(init=False, repr=False, compare=False)
    _hash: hashes.SHA256 | hashes.SHA384 | None = field(init=False, repr=False, compare=False)
    _not_after: datetime = field(init=False, repr=False, compare=False)
    _subject: x509.Name = field(init=False, repr=False, compare=False)
    # Device certificate templates by (key type, subject shape); None: use the builder.
    _templates: dict[tuple[object, ...], ClientTemplate | None] = field(
        init=False, repr=False, compare=False
    )
    _last_validity: tuple[int, int, bytes] = field(
        init=False, repr=False, compare=False, default=(0, 0, b"")
    )

    def __post_init__(self) -> None:
        if not is_ca(self.cert):
            raise PolicyError(f"{self.cert.subject.rfc4514_string()} is not a CA certificate")
        if public_key_der(self.key) != public_key_der(self.cert.public_key()):
            raise InputError("the CA key does not belong to the CA certificate")
        try:
            ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            # The certificate's key is self.key's public half (checked above).
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())
        object.__setattr__(self, "_aki", aki)
        object.__setattr__(self, "_hash", signature_hash(self.key))
        object.__setattr__(self, "_not_after", self.cert.not_valid_after_utc)
        # Certificate.subject parses the name anew on every access.
        object.__setattr__(self, "_subject", self.cert.subject)
        object.__setattr__(self, "_templates", {})

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This CA and its parents, nearest first: what a leaf's chain file carries."""
        return (self.cert, *self.parents)

    def _validity(self, days: int, now: datetime | None) -> tuple[datetime, datetime]:
        """notBefore and notAfter, naive UTC, as CertificateBuilder takes them."""
        now = now or datetime.now(timezone.utc)
        # A certificate outliving its issuer would fail verification when the issuer expires.
        not_after = min(now + timedelta(days=_check_days(days)), self._not_after)
        not_before = _naive_utc(now - BACKDATE)
        if min(not_before, _naive_utc(not_after)) < _EARLIEST:
            # cryptography's signer panics on such dates instead of raising.
            raise InputError(f"a certificate cannot start before 1950 (now={now.isoformat()})")
        return not_before, _naive_utc(not_after)

    def _build(
        self,
        profile: Profile,
        subject: x509.Name,
        public_key: PublicKey,
        days: int,
        *,
        san: Sequence[x509.GeneralName] = (),
        path_length: int | None = None,
        now: datetime | None = None,
        serial: int | None = None,
    ) -> x509.Certificate:
        serial = x509.random_serial_number() if serial is None else check_serial(serial)
        not_before, not_after = self._validity(days, now)
        return self._sign_builder(
            profile, subject, public_key, serial, not_before, not_after, san, path_length
        )

    def _sign_builder(
        self,
        profile: Profile,
        subject: x509.Name,
        public_key: PublicKey,
        serial: int,
        not_before: datetime,
        not_after: datetime,
        san: Sequence[x509.GeneralName] = (),
        path_length: int | None = None,
    ) -> x509.Certificate:
        # The constructor (not the fluent setters) avoids re-validating constant parts for
        # every certificate; the Rust signer still checks everything it encodes.
        builder = x509.CertificateBuilder(
            issuer_name=self._subject,
            subject_name=subject,
            public_key=public_key,
            serial_number=serial,
            not_valid_before=not_before,
            not_valid_after=not_after,
            extensions=extensions(
                profile, public_key, authority_key_id=self._aki, path_length=path_length, san=san
            ),
        )
        return builder.sign(self.key, self._hash)

    def _client_builder(
        self,
        subject: x509.Name,
        public_key: PublicKey,
        serial: int,
        not_before: datetime,
        not_after: datetime,
    ) -> x509.Certificate:
        return self._sign_builder(
            Profile.CLIENT, subject, public_key, serial, not_before, not_after
        )

    def client_template(
        self,
        key_type: KeyType | None,
        subject: SubjectTemplate | None = None,
        organization: str | None = None,
    ) -> ClientTemplate | None:
        """The TBS template for device certificates of this key type and subject (a template,
        or `[O=organization,]CN=...`), made and checked against the builder on first use;
        None where only the builder fits."""
        cache_key = (key_type, subject, organization)
        template = self._templates.get(cache_key, _NOT_MADE)
        if template is not _NOT_MADE:
            return template
        curve = _CURVES.get(key_type) if key_type is not None else None
        shape = _subject_shape(subject, organization)
        if curve is not None and shape is not None:
            template = ClientTemplate.create(
                self._client_builder,
                self.key,
                self._hash,
                self.cert,
                *shape,
                curve,
            )
        else:
            template = None
        self._templates[cache_key] = template
        return template

    def _validity_der(self, days: int, now: datetime | None) -> bytes:
        if now is not None:
            return der_validity(*self._validity(days, now))
        # Certificates hold whole seconds, and BACKDATE, days and the CA's notAfter are whole
        # seconds too: `now` cut to its second gives the same dates. So one encoding serves
        # every certificate issued within that second.
        second = int(time.time())
        last = self._last_validity
        if last[0] == second and last[1] == days:
            return last[2]
        der = der_validity(*self._validity(days, datetime.fromtimestamp(second, timezone.utc)))
        object.__setattr__(self, "_last_validity", (second, days, der))
        return der

    def issue_intermediate(
        self,
        common_name_: str,
        *,
        key_type: KeyType = DEFAULT_KEY_TYPE,
        days: int = DEFAULT_CA_DAYS,
        path_length: int = 0,
        organization: str | None = None,
        allow_ed25519: bool = False,
        key: PrivateKey | None = None,
    ) -> Authority:
        key_type = check_key_type(key_type, allow_ed25519)
        if path_length < 0:
            raise InputError("path length must be 0 or more")
        key = key or generate_key(key_type)
        cert = self._build(
            Profile.INTERMEDIATE_CA,
            _name(common_name_, organization),
            key.public_key(),
            days,
            path_length=path_length,
        )
        return Authority(cert, key, self.chain)

    def issue_server(
        self,
        names: Sequence[str],
        *,
        key_type: KeyType = DEFAULT_KEY_TYPE,
        days: int = DEFAULT_LEAF_DAYS,
        common_name_: str | None = None,
        allow_ed25519: bool = False,
        key: PrivateKey | None = None,
    ) -> tuple[PrivateKey, x509.Certificate]:
        """A server key and certificate with SAN `names` (DNS names and IPs), EKU serverAuth."""
        if not names:
            raise InputError("a server certificate needs at least one DNS name or IP (--san)")
        san = parse_san(names)
        key_type = check_key_type(key_type, allow_ed25519)
        key = key or generate_key(key_type)
        cert = self._build(
            Profile.SERVER, _name(common_name_ or names[0]), key.public_key(), days, san=san
        )
        return key, cert

    def issue_client(
        self,
        device_id: str,
        *,
        key_type: KeyType = DEFAULT_KEY_TYPE,
        days: int = DEFAULT_LEAF_DAYS,
        organization: str | None = None,
        allow_ed25519: bool = False,
        key: PrivateKey | None = None,
        now: datetime | None = None,
        serial: int | None = None,
        subject: SubjectTemplate | None = None,
    ) -> tuple[PrivateKey, x509.Certificate]:
        """A device key and certificate: CN = device id, EKU clientAuth.

        `serial` (default: 159 random bits) lets a registry hand out serials; `subject`
        replaces the plain `[O=organization,]CN=device id`. P-256/P-384 keys are certified
        through the authority's TBS template (tbs_template.py); the same bytes as the builder.
        """
        validate_device_id(device_id)
        if subject is not None and organization:
            raise InputError("give the organization in the subject template, not both")
        key_type = check_key_type(key_type, allow_ed25519)
        if serial is not None:
            check_serial(serial)
        template = self.client_template(
            key_type_of(key) if key is not None else key_type, subject, organization
        )
        if template is not None:
            validity = self._validity_der(days, now)
            serial = x509.random_serial_number() if serial is None else serial
            if key is None:
                key, _, new_der = template.issue_new_key(device_id, serial, validity)
                return key, x509.load_der_x509_certificate(new_der)
            der = template.issue(device_id, public_key_der(key), serial, validity)
            if der is not None:
                return key, x509.load_der_x509_certificate(der)
        key = key or generate_key(key_type)
        name = subject.name(device_id) if subject else _name(device_id, organization)
        cert = self._build(Profile.CLIENT, name, key.public_key(), days, now=now, serial=serial)
        return key, cert

    def issue_client_bytes(
        self,
        device_id: str,
        *,
        key_type: KeyType = DEFAULT_KEY_TYPE,
        days: int = DEFAULT_LEAF_DAYS,
        organization: str | None = None,
        allow_ed25519: bool = False,
        now: datetime | None = None,
        serial: int | None = None,
        subject: SubjectTemplate | None = None,
    ) -> ClientCredential:
        """issue_client for a fresh key, as bytes: what a line writes to a device.

        Skips work the objects would only undo: the certificate is not parsed back into an
        object, and the key is serialized once (its PKCS#8 also gives the public point).
        """
        validate_device_id(device_id)
        if subject is not None and organization:
            raise InputError("give the organization in the subject template, not both")
        key_type = check_key_type(key_type, allow_ed25519)
        if serial is not None:
            check_serial(serial)
        template = self._templates.get((key_type, subject, organization), _NOT_MADE)
        if template is _NOT_MADE:
            template = self.client_template(key_type, subject, organization)
        if template is not None:
            validity = self._validity_der(days, now)
            serial = x509.random_serial_number() if serial is None else serial
            _, key_der, der = template.issue_new_key(device_id, serial, validity)
            return ClientCredential(key_der, der)
        key = generate_key(key_type)
        name = subject.name(device_id) if subject else _name(device_id, organization)
        cert = self._build(Profile.CLIENT, name, key.public_key(), days, now=now, serial=serial)
        return ClientCredential(serialize_private_key(key, encoding="der"), cert_der(cert))

    def sign_request(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        profile: Profile = Profile.CLIENT,
        device_id: str | None = None,
        san: Sequence[str] = (),
        days: int = DEFAULT_LEAF_DAYS,
        allowed_key_types: Sequence[KeyType] = CSR_KEY_TYPES,
        source: str = "CSR",
        serial: int | None = None,
        subject: SubjectTemplate | None = None,
    ) -> x509.Certificate:
        """Sign a CSR after policy checks; PolicyError names the rule that refused it.

        Only the public key and (checked) subject CN are taken from the request: requested
        extensions are ignored, so a CSR cannot ask for CA rights or extra names. A client
        certificate's subject is `subject` filled with the CN (default: the CN alone).
        `serial` as for issue_client.
        """
        if serial is not None:
            check_serial(serial)
        if profile not in (Profile.CLIENT, Profile.SERVER):
            raise PolicyError("CSRs are signed only as client or server certificates")
        if not csr.is_signature_valid:
            raise PolicyError(f"{source}: the CSR signature does not verify")
        public_key = csr.public_key()
        kt = key_type_of(public_key)
        # A key type we issue for is one of PublicKey's classes; isinstance tells mypy so.
        if kt is None or kt not in allowed_key_types or not isinstance(public_key, PublicKey):
            allowed = ", ".join(k.label for k in allowed_key_types)
            raise PolicyError(
                f"{source}: key type {describe_key(public_key)} is not allowed (allowed: {allowed})"
            )
        cn = common_name(csr.subject)
        if device_id is not None:
            validate_device_id(device_id)
            if cn is not None and cn != device_id:
                raise PolicyError(
                    f"{source}: subject CN {cn!r} does not match the device id {device_id!r}"
                )
            cn = device_id
        if profile is Profile.CLIENT:
            if cn is None:
                raise PolicyError(f"{source}: the CSR has no subject CN; give --device-id")
            subject = subject or DEFAULT_SUBJECT
            name = subject.name(cn)
            kt = key_type_of(public_key)
            template = self.client_template(kt, subject)
            if template is not None:
                spki = public_key_der(public_key)
                validity = self._validity_der(days, None)
                serial = x509.random_serial_number() if serial is None else serial
                der = template.issue(cn, spki, serial, validity)
                if der is not None:
                    return x509.load_der_x509_certificate(der)
            return self._build(Profile.CLIENT, name, public_key, days, serial=serial)
        names = list(san)
        if not names:
            if cn is None:
                raise PolicyError(f"{source}: a server CSR needs a CN or --san names")
            names = [cn]
        return self._build(
            Profile.SERVER,
            _name(cn or names[0]),
            public_key,
            days,
            san=parse_san(names),
            serial=serial,
        )


def create_root_ca(
    common_name_: str,
    *,
    key_type: KeyType = DEFAULT_KEY_TYPE,
    days: int = DEFAULT_CA_DAYS,
    organization: str | None = None,
    path_length: int | None = None,
    allow_ed25519: bool = False,
    key: PrivateKey | None = None,
    now: datetime | None = None,
) -> Authority:
    """A self-signed root: basicConstraints CA (critical), keyCertSign/cRLSign, SKI."""
    key_type = check_key_type(key_type, allow_ed25519)
    if not common_name_:
        raise InputError("a CA needs a common name")
    key = key or generate_key(key_type)
    now = now or datetime.now(timezone.utc)
    name = _name(common_name_, organization)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=_check_days(days)))
    )
    for ext in extensions(
        Profile.ROOT_CA, key.public_key(), authority_key_id=None, path_length=path_length
    ):
        builder = builder.add_extension(ext.value, ext.critical)
    cert = builder.sign(key, signature_hash(key))
    return Authority(cert, key)


def load_authority(
    cert_data: bytes,
    key_data: bytes,
    password: bytes | None,
    *,
    cert_source: str,
    key_source: str,
) -> Authority:
    """An Authority from a CA certificate file (optionally followed by its parents) and key."""
    certs = load_certificates(cert_data, cert_source)
    key = load_private_key(key_data, password, key_source)
    if public_key_der(key) != public_key_der(certs[0].public_key()):
        raise InputError(f"{key_source}: key does not belong to the CA certificate {cert_source}")
    if not is_ca(certs[0]):
        raise PolicyError(f"{cert_source}: not a CA certificate (basicConstraints CA missing)")
    return Authority(certs[0], key, tuple(certs[1:]))


def chain_pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(cert_pem(c) for c in certs)
