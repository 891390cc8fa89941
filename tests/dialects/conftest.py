"""Fixtures for the dialect tests: device sets made with provision.pki, and a back-to-back
transport that runs a sans-IO simulated device in the test's own thread (no sleeps)."""

from __future__ import annotations

import pytest

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_der, cert_pem
from provision.pki.keys import serialize_private_key


@pytest.fixture(scope="session")
def pki_material():
    root = create_root_ca("Dialect Test Root")
    other_root = create_root_ca("Dialect Test Root 2")
    key, cert = root.issue_client("dev-0001")
    return {
        "root_pem": cert_pem(root.cert),
        "root_der": cert_der(root.cert),
        "root2_pem": cert_pem(other_root.cert),
        "cert_pem": cert_pem(cert),
        "cert_der": cert_der(cert),
        "key_pem": serialize_private_key(key),
        "key_der": serialize_private_key(key, encoding="der"),
        "key_enc_pem": serialize_private_key(key, password=b"s3cret-pass"),
    }


@pytest.fixture
def device_set(pki_material) -> CredentialSet:
    m = pki_material
    return CredentialSet.of(
        [
            Slot(42, SlotType.ROOT_CA, Encoding.PEM, m["root_pem"]),
            Slot(42, SlotType.CLIENT_CERT, Encoding.PEM, m["cert_pem"]),
            Slot(42, SlotType.CLIENT_KEY, Encoding.PEM, m["key_pem"]),
        ]
    )


@pytest.fixture
def encrypted_set(pki_material) -> CredentialSet:
    m = pki_material
    return CredentialSet.of(
        [
            Slot(7, SlotType.CLIENT_CERT, Encoding.PEM, m["cert_pem"]),
            Slot(7, SlotType.CLIENT_KEY, Encoding.PEM, m["key_enc_pem"], SlotFlags.ENCRYPTED),
            Slot(7, SlotType.KEY_PASSWORD, Encoding.RAW, b"s3cret-pass"),
        ]
    )
