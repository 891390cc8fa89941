from __future__ import annotations

import hashlib

import pytest

from provision.errors import PolicyError
from provision.pki.certs import cert_der, cert_pem
from provision.pki.keys import KeyType, generate_key, public_key_der
from provision.pki.signing import key_id, sign_digest, verify_digest

DIGEST = hashlib.sha256(b"bundle body").digest()


def test_key_id_is_sha256_prefix_of_spki() -> None:
    key = generate_key()
    assert key_id(key.public_key()) == hashlib.sha256(public_key_der(key)).digest()[:8]


def test_sign_and_verify_with_key_and_cert(root) -> None:
    kid, sig = sign_digest(root.key, DIGEST)
    assert len(kid) == 8 and len(sig) == 64
    assert verify_digest(root.key.public_key(), DIGEST, kid, sig)
    assert verify_digest(cert_pem(root.cert), DIGEST, kid, sig)
    assert verify_digest(cert_der(root.cert), DIGEST, kid, sig)


def test_verify_rejects_changes(root) -> None:
    kid, sig = sign_digest(root.key, DIGEST)
    pub = root.key.public_key()
    assert not verify_digest(pub, hashlib.sha256(b"other").digest(), kid, sig)
    assert not verify_digest(pub, DIGEST, bytes(8), sig)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not verify_digest(pub, DIGEST, kid, flipped)
    assert not verify_digest(generate_key().public_key(), DIGEST, kid, sig)
    assert not verify_digest(pub, DIGEST, kid, sig[:63])


def test_sign_needs_p256() -> None:
    with pytest.raises(PolicyError):
        sign_digest(generate_key(KeyType.P384), DIGEST)
