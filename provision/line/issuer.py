"""The station's issuing side: the CA (key file or token) and the credentials per device.

Only provision.pki touches cryptography; this module turns its results into the bytes and
fingerprints the line writes and records.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.errors import InputError
from provision.line.config import StationConfig
from provision.pki.authority import Authority, load_authority
from provision.pki.certs import cert_der, load_certificates
from provision.pki.csr import load_csr
from provision.pki.files import read_input
from provision.pki.hsm import is_pkcs11_uri, load_hsm_key
from provision.pki.keys import KeyType, serialize_private_key
from provision.pki.pem import pem_armor


@dataclass(frozen=True)
class Issued:
    """What one device gets, and what the registry keeps of it (public parts only)."""

    device_id: str
    credentials: CredentialSet
    cert_pem: str
    cert_serial: str
    cert_sha256: str
    root_sha256: str | None
    sec_tags: tuple[int, ...]
    # Digests the device must report afterwards; the key is only in `credentials`.
    public: CredentialSet = field(repr=False)


class Issuer:
    def __init__(self, cfg: StationConfig) -> None:
        self.cfg = cfg
        self.authority = _load_authority(cfg)
        self._roots: dict[int, tuple[bytes, ...]] = {}
        default_root = cert_der(self.authority.chain[-1])
        for tag in cfg.layout:
            ders: list[bytes] = []
            for path in tag.roots:
                for cert in load_certificates(read_input(path, "root CA"), str(path)):
                    ders.append(cert_der(cert))
            if not ders and tag.client:
                ders = [default_root]
            self._roots[tag.sec_tag] = tuple(ders)
        first = next((d for t in cfg.layout for d in self._roots[t.sec_tag]), None)
        self.root_sha256 = hashlib.sha256(first).hexdigest() if first else None
        self.key_type = KeyType(cfg.key_type)
        self.subject = cfg.subject_template

    def _root_slots(self) -> list[Slot]:
        return [
            Slot(tag, SlotType.ROOT_CA, Encoding.DER, der)
            for tag, ders in self._roots.items()
            for der in ders
        ]

    def public_set(self, cert_pem_text: str | None) -> CredentialSet:
        """The public slots a device provisioned with `cert_pem_text` must hold."""
        slots = self._root_slots()
        if cert_pem_text:
            der = cert_der(load_certificates(cert_pem_text.encode(), "registry")[0])
            slots.append(Slot(self.cfg.client_tag, SlotType.CLIENT_CERT, Encoding.DER, der))
        return CredentialSet.of(slots)

    def issue_with_key(self, device_id: str, serial: int | None = None) -> Issued:
        """Host-generated key: key and certificate made here, both written to the device.

        `serial`: the registry claim's (Claim.serial: unique across stations); None: random.
        """
        if serial is None:
            key, cert = self.authority.issue_client(
                device_id, key_type=self.key_type, days=self.cfg.days, subject=self.subject
            )
            key_der = serialize_private_key(key, encoding="der")
            return self._issued(device_id, cert_der(cert), cert.serial_number, key_der)
        # The line's path: bytes straight from the CA, the certificate never parsed back.
        made = self.authority.issue_client_bytes(
            device_id,
            key_type=self.key_type,
            days=self.cfg.days,
            subject=self.subject,
            serial=serial,
        )
        return self._issued(device_id, made.cert_der, serial, made.key_der)

    def issue_for_csr(self, device_id: str, csr_der: bytes, serial: int | None = None) -> Issued:
        """Device keygen: sign the device's CSR; the key stays on the device."""
        csr = load_csr(csr_der, f"CSR from {device_id}").csr
        cert = self.authority.sign_request(
            csr,
            device_id=device_id,
            days=self.cfg.days,
            source=f"CSR from {device_id}",
            subject=self.subject,
            serial=serial,
        )
        return self._issued(device_id, cert_der(cert), cert.serial_number, None)

    def _issued(self, device_id: str, der: bytes, serial: int, key_der: bytes | None) -> Issued:
        key_slot = (
            Slot(self.cfg.client_tag, SlotType.CLIENT_KEY, Encoding.DER, key_der)
            if key_der is not None
            else None
        )
        cert_slot = Slot(self.cfg.client_tag, SlotType.CLIENT_CERT, Encoding.DER, der)
        public = CredentialSet.of([*self._root_slots(), cert_slot], device_id)
        slots = [*public.slots, *([key_slot] if key_slot else [])]
        return Issued(
            device_id=device_id,
            credentials=CredentialSet.of(slots, device_id),
            cert_pem=pem_armor("CERTIFICATE", der).decode(),
            cert_serial=f"{serial:x}",
            cert_sha256=hashlib.sha256(der).hexdigest(),
            root_sha256=self.root_sha256,
            sec_tags=tuple(sorted({s.sec_tag for s in slots})),
            public=public,
        )


def _load_authority(cfg: StationConfig) -> Authority:
    cert_data = read_input(cfg.ca_cert, "CA certificate")
    if is_pkcs11_uri(cfg.ca_key):
        certs = load_certificates(cert_data, str(cfg.ca_cert))
        key = load_hsm_key(cfg.ca_key, public_key=certs[0].public_key())
        return Authority(certs[0], key, tuple(certs[1:]))
    password = None
    if cfg.ca_key_password_env:
        value = os.environ.get(cfg.ca_key_password_env)
        if not value:
            raise InputError(f"environment variable {cfg.ca_key_password_env} is not set or empty")
        password = value.encode()
    return load_authority(
        cert_data,
        read_input(cfg.ca_key, "CA key"),
        password,
        cert_source=str(cfg.ca_cert),
        key_source=str(cfg.ca_key),
    )
