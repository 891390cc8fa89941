"""Fixtures for the pre-flight check: a small PKI made once per session (P-256)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.pki.authority import Authority, create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key

PASSWORD = b"s3cret-pw"


@dataclass
class Pki:
    root: Authority
    intermediate: Authority
    other_root: Authority


@pytest.fixture(scope="session")
def pki() -> Pki:
    root = create_root_ca("Check Root")
    return Pki(root, root.issue_intermediate("Check Issuing"), create_root_ca("Other Root"))


def credential_set(
    roots: list[bytes],
    cert: bytes | None,
    key: bytes | None,
    password: bytes | None = None,
    sec_tag: int = 42,
) -> CredentialSet:
    slots = [Slot(sec_tag, SlotType.ROOT_CA, Encoding.PEM, r) for r in roots]
    if cert is not None:
        slots.append(Slot(sec_tag, SlotType.CLIENT_CERT, Encoding.PEM, cert))
    if key is not None:
        flags = SlotFlags.ENCRYPTED if password else SlotFlags.NONE
        slots.append(Slot(sec_tag, SlotType.CLIENT_KEY, Encoding.PEM, key, flags))
    if password is not None:
        slots.append(Slot(sec_tag, SlotType.KEY_PASSWORD, Encoding.RAW, password))
    return CredentialSet.of(slots)


@pytest.fixture(scope="session")
def make_set():
    return credential_set


@pytest.fixture(scope="session")
def password() -> bytes:
    return PASSWORD


@pytest.fixture(scope="session")
def device(pki: Pki):
    key, cert = pki.intermediate.issue_client("dev-0001")
    return key, cert


@pytest.fixture
def good_set(pki: Pki, device) -> CredentialSet:
    key, cert = device
    return credential_set(
        [cert_pem(pki.root.cert)],
        cert_pem(cert) + cert_pem(pki.intermediate.cert),
        serialize_private_key(key, password=PASSWORD),
        PASSWORD,
    )
