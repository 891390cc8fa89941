"""Device certificates from a TBSCertificate template: the fast path of Authority.issue_client.

CertificateBuilder spends ~45 µs per certificate encoding parts that are the same for every
device of one CA and subject shape (version, signature algorithm, issuer, the fixed
extensions). A `ClientTemplate` takes those parts as DER from certificates the builder made
(probes) and splices in the few fields that vary: serial, notBefore/notAfter, the CN, the
SubjectPublicKeyInfo and its key identifier. The TBS is signed with the CA key's own sign()
(so a token key works too) and wrapped as the Certificate.

Only what can be spliced exactly is covered: an EC subject key of the template's curve, a
subject whose only varying part is a single-valued CN RDN, a CA key that signs with ECDSA or
RSA PKCS#1 v1.5 over a hash. `ClientTemplate.create` compares its output with the builder's
on probes that cross the encodings' boundaries (serial sign octet, UTCTime/GeneralizedTime,
a long CN) and gives None when anything differs; the caller then keeps using the builder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from cryptography.x509.oid import NameOID

from provision.pki.keys import PrivateKey, PublicKey

# Makes a device certificate the slow way: (subject, public key, serial, notBefore, notAfter).
SlowBuild = Callable[[x509.Name, PublicKey, int, datetime, datetime], x509.Certificate]

_SEQUENCE, _SET, _INTEGER, _BIT_STRING, _EXTENSIONS = 0x30, 0x31, 0x02, 0x03, 0xA3
_UTF8_STRING = 0x0C
_CN_OID = b"\x06\x03\x55\x04\x03"  # 2.5.4.3
_SKI_OID = b"\x06\x03\x55\x1d\x0e"  # 2.5.29.14
_SHA1_SIZE = 20


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def der_tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + der_length(len(content)) + content


def der_positive_integer(n: int) -> bytes:
    # bit_length // 8 + 1 octets: room for the 0x00 that a set top bit needs (DER sign).
    return der_tlv(_INTEGER, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def der_time(dt: datetime) -> bytes:
    """RFC 5280 4.1.2.5: UTCTime for 1950-2049, GeneralizedTime otherwise, whole seconds
    (as cryptography writes them). `dt` is naive UTC, as CertificateBuilder is given it."""
    if 1950 <= dt.year < 2050:
        fields = (dt.year % 100, dt.month, dt.day, dt.hour, dt.minute, dt.second)
        return b"\x17\x0d%02d%02d%02d%02d%02d%02dZ" % fields
    fields = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)
    return b"\x18\x0f%04d%02d%02d%02d%02d%02dZ" % fields


def der_validity(not_before: datetime, not_after: datetime) -> bytes:
    """Validity SEQUENCE; the dates naive UTC."""
    return der_tlv(_SEQUENCE, der_time(not_before) + der_time(not_after))


def cn_rdn(cn: str) -> bytes:
    """RDN SET { SEQUENCE { CN, UTF8String } }: cryptography's NameAttribute(COMMON_NAME, cn)."""
    value = cn.encode()
    n = len(value)
    if n + 9 < 0x80:  # every length short-form: the common case, spelled out for speed
        return b"\x31%c\x30%c\x06\x03\x55\x04\x03\x0c%c" % (n + 9, n + 7, n) + value
    return der_tlv(_SET, der_tlv(_SEQUENCE, _CN_OID + der_tlv(_UTF8_STRING, value)))


def _read(data: bytes, pos: int, limit: int) -> tuple[int, int, int]:
    """(tag, content start, end) of the DER element at `pos`; ValueError if malformed."""
    if pos + 2 > limit:
        raise ValueError("truncated DER")
    tag, n = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-octet DER tag")
    pos += 2
    if n & 0x80:
        size = n & 0x7F
        if not 1 <= size <= 4 or pos + size > limit:
            raise ValueError("bad DER length")
        n = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    if pos + n > limit:
        raise ValueError("truncated DER")
    return tag, pos, pos + n


def der_children(data: bytes, tag: int) -> list[bytes]:
    """The elements inside `data`, one DER element that must have `tag`."""
    outer, start, end = _read(data, 0, len(data))
    if outer != tag or end != len(data):
        raise ValueError("unexpected DER element")
    out = []
    while start < end:
        _, _, child_end = _read(data, start, end)
        out.append(data[start:child_end])
        start = child_end
    return out


def _signer(key: PrivateKey, algorithm: hashes.HashAlgorithm | None) -> Callable[[bytes], bytes]:
    """A function making the signature CertificateBuilder.sign makes with `key`."""
    if algorithm is None:
        raise ValueError("no template for keys that sign without a hash (Ed25519)")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(algorithm)
        return lambda tbs: key.sign(tbs, ecdsa)
    if isinstance(key, rsa.RSAPrivateKey):
        pkcs1 = padding.PKCS1v15()  # the builder's default for RSA keys
        return lambda tbs: key.sign(tbs, pkcs1, algorithm)
    raise ValueError(f"no template for {type(key).__name__} CA keys")


def _point(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


@dataclass(frozen=True)
class _Probe:
    cn: str
    name: x509.Name
    public_key: ec.EllipticCurvePublicKey
    serial: int
    not_before: datetime
    not_after: datetime


def _probes(
    before: Sequence[x509.RelativeDistinguishedName],
    after: Sequence[x509.RelativeDistinguishedName],
    curve: ec.EllipticCurve,
) -> list[_Probe]:
    """Inputs on both sides of each encoding choice the fast path makes."""
    key = ec.generate_private_key(curve).public_key()
    cases = [
        ("p", 1, datetime(2030, 1, 2, 3, 4, 5), datetime(2031, 1, 2, 3, 4, 5)),
        ("probe-" + "x" * 58, 0xFF, datetime(2049, 12, 31, 23, 59, 59), datetime(2050, 1, 1)),
        ("probe-2", (1 << 159) - 1, datetime(2060, 6, 7, 8, 9, 10), datetime(2099, 1, 1)),
        ("probe-3", 1 << 158, datetime(1950, 1, 1), datetime(2000, 2, 29, 12)),
    ]
    return [
        _Probe(
            cn,
            x509.Name([*before, x509.RelativeDistinguishedName([_cn(cn)]), *after]),
            key,
            serial,
            nb,
            na,
        )
        for cn, serial, nb, na in cases
    ]


def _cn(cn: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.COMMON_NAME, cn)


@dataclass(frozen=True, eq=False)
class ClientTemplate:
    """The constant DER of one CA's device certificates for one subject shape and curve."""

    curve: ec.EllipticCurve
    version: bytes  # [0] EXPLICIT v3
    signature_algorithm: bytes  # AlgorithmIdentifier, in the TBS and after it
    issuer: bytes
    rdns_before: bytes  # the subject's RDNs before the CN, as DER
    rdns_after: bytes
    spki_prefix: bytes  # SubjectPublicKeyInfo up to the uncompressed EC point
    point_size: int
    extensions_head: bytes  # [3] { SEQUENCE { extensions before the SKI, SKI up to its value
    extensions_tail: bytes  # the extensions after the SKI
    sign: Callable[[bytes], bytes] = field(repr=False)

    @classmethod
    def create(
        cls,
        slow_build: SlowBuild,
        ca_key: PrivateKey,
        algorithm: hashes.HashAlgorithm | None,
        ca_cert: x509.Certificate,
        rdns_before: Sequence[x509.RelativeDistinguishedName],
        rdns_after: Sequence[x509.RelativeDistinguishedName],
        curve: ec.EllipticCurve,
    ) -> ClientTemplate | None:
        """A template from the builder's probe certificates, or None when one cannot be made
        or its output differs from the builder's for any probe."""
        try:
            sign = _signer(ca_key, algorithm)
            probes = _probes(rdns_before, rdns_after, curve)
            certs = [
                slow_build(p.name, p.public_key, p.serial, p.not_before, p.not_after)
                for p in probes
            ]
            template = cls._from_probe(certs[0], probes[0], sign, curve, len(rdns_before))
            for probe, expected in zip(probes, certs, strict=True):
                spki = probe.public_key.public_bytes(
                    Encoding.DER, PublicFormat.SubjectPublicKeyInfo
                )
                validity = der_validity(probe.not_before, probe.not_after)
                tbs = template.tbs(probe.cn, spki, probe.serial, validity)
                if tbs != expected.tbs_certificate_bytes:
                    return None
                der = template.certificate(tbs)
                mine = der_children(der, _SEQUENCE)
                theirs = der_children(expected.public_bytes(Encoding.DER), _SEQUENCE)
                if mine[:2] != theirs[:2]:
                    return None
                x509.load_der_x509_certificate(der).verify_directly_issued_by(ca_cert)
            # issue_new_key takes the public point from the key's PKCS#8 encoding.
            key = ec.generate_private_key(curve)
            key_der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, _NO_ENCRYPTION)
            if pkcs8_ec_point(key_der, template.point_size) != _point(key.public_key()):
                return None
        except (ValueError, TypeError, IndexError, InvalidSignature):
            return None
        return template

    @classmethod
    def _from_probe(
        cls,
        cert: x509.Certificate,
        probe: _Probe,
        sign: Callable[[bytes], bytes],
        curve: ec.EllipticCurve,
        cn_index: int,
    ) -> ClientTemplate:
        outer = der_children(cert.public_bytes(Encoding.DER), _SEQUENCE)
        fields = der_children(cert.tbs_certificate_bytes, _SEQUENCE)
        if len(outer) != 3 or len(fields) != 8:
            raise ValueError("unexpected certificate shape")
        version, _serial, sig_alg, issuer, _validity, subject, spki, exts = fields
        if sig_alg != outer[1]:
            raise ValueError("different signature algorithms inside and outside the TBS")
        rdns = der_children(subject, _SEQUENCE)
        if rdns[cn_index] != cn_rdn(probe.cn):
            raise ValueError("the CN is not encoded as expected")
        point = _point(probe.public_key)
        if not spki.endswith(point):
            raise ValueError("unexpected SubjectPublicKeyInfo")
        (ext_seq,) = der_children(exts, _EXTENSIONS)
        ext_list = der_children(ext_seq, _SEQUENCE)
        at = [i for i, e in enumerate(ext_list) if der_children(e, _SEQUENCE)[0] == _SKI_OID]
        ski_value = hashlib.sha1(point, usedforsecurity=False).digest()
        if len(at) != 1 or not ext_list[at[0]].endswith(ski_value):
            raise ValueError("no subject key identifier to splice")
        # The SKI value has a fixed size, so the length headers in the head stay valid.
        from_ski = b"".join(ext_list[at[0] :])
        head = exts[: len(exts) - len(from_ski)] + ext_list[at[0]][:-_SHA1_SIZE]
        return cls(
            curve=curve,
            version=version,
            signature_algorithm=sig_alg,
            issuer=issuer,
            rdns_before=b"".join(rdns[:cn_index]),
            rdns_after=b"".join(rdns[cn_index + 1 :]),
            spki_prefix=spki[: -len(point)],
            point_size=len(point),
            extensions_head=head,
            extensions_tail=b"".join(ext_list[at[0] + 1 :]),
            sign=sign,
        )

    def spki(self, point: bytes) -> bytes:
        return self.spki_prefix + point

    def tbs(self, cn: str, spki: bytes, serial: int, validity: bytes) -> bytes | None:
        """The TBSCertificate DER, or None when `spki` is not a key of this template's curve
        (uncompressed point). `serial` positive; `validity` from der_validity."""
        prefix = self.spki_prefix
        if len(spki) != len(prefix) + self.point_size or not spki.startswith(prefix):
            return None
        value = cn.encode()
        n = len(value)
        if n + 9 < 0x80:  # the RDN's lengths all short-form: spelled out, it runs per device
            rdn = b"\x31%c\x30%c\x06\x03\x55\x04\x03\x0c%c%s" % (n + 9, n + 7, n, value)
        else:
            rdn = cn_rdn(cn)
        subject = self.rdns_before + rdn + self.rdns_after
        serial_octets = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
        body = b"".join(
            (
                self.version,
                b"\x02",
                der_length(len(serial_octets)),
                serial_octets,
                self.signature_algorithm,
                self.issuer,
                validity,
                b"\x30",
                der_length(len(subject)),
                subject,
                spki,
                self.extensions_head,
                hashlib.sha1(spki[len(prefix) :], usedforsecurity=False).digest(),
                self.extensions_tail,
            )
        )
        return _sequence(body)

    def certificate(self, tbs: bytes) -> bytes:
        """The Certificate DER: `tbs`, the signature algorithm, the CA's signature over it."""
        signature = self.sign(tbs)
        bit_string = b"\x03" + der_length(len(signature) + 1) + b"\x00"
        return _sequence(b"".join((tbs, self.signature_algorithm, bit_string, signature)))

    def issue(self, cn: str, spki: bytes, serial: int, validity: bytes) -> bytes | None:
        """A device certificate's DER, or None when `spki` does not fit the template."""
        tbs = self.tbs(cn, spki, serial, validity)
        return None if tbs is None else self.certificate(tbs)

    def issue_new_key(
        self, cn: str, serial: int, validity: bytes
    ) -> tuple[ec.EllipticCurvePrivateKey, bytes, bytes]:
        """A fresh key of the template's curve, its unencrypted PKCS#8 DER, and its
        certificate's DER. The SPKI is made from the public point in the PKCS#8 encoding:
        serializing the key once is cheaper than also asking for the public key's bytes."""
        key = ec.generate_private_key(self.curve)
        key_der = key.private_bytes(_DER, _PKCS8, _NO_ENCRYPTION)
        point = pkcs8_ec_point(key_der, self.point_size)
        spki = self.spki_prefix + point if point else _spki(key.public_key())
        tbs = self.tbs(cn, spki, serial, validity)
        if tbs is None:  # not reached for a key of our own curve; never guess
            raise ValueError(f"a fresh {self.curve.name} key does not fit its template")
        return key, key_der, self.certificate(tbs)


def _sequence(body: bytes) -> bytes:
    n = len(body)
    if 0x100 <= n < 0x10000:  # any TBS or certificate of ours
        return b"\x30\x82" + n.to_bytes(2, "big") + body
    return b"\x30" + der_length(n) + body


def pkcs8_ec_point(key_der: bytes, point_size: int) -> bytes | None:
    """The public point OpenSSL writes at the end of an EC PKCS#8 key (ECPrivateKey's
    [1] publicKey BIT STRING), or None when the key does not end that way."""
    tail = _PKCS8_TAILS.get(point_size)
    if tail is None:
        bit_string = b"\x03" + der_length(point_size + 1) + b"\x00"
        tail = _PKCS8_TAILS[point_size] = (
            b"\xa1" + der_length(len(bit_string) + point_size) + bit_string
        )
    end = len(key_der) - point_size
    if end < len(tail) or key_der[end - len(tail) : end] != tail or key_der[end] != 0x04:
        return None
    return key_der[end:]


def _spki(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


_DER, _PKCS8, _NO_ENCRYPTION = Encoding.DER, PrivateFormat.PKCS8, NoEncryption()
_PKCS8_TAILS: dict[int, bytes] = {}
