"""The firmware stub's own TLS check: the posix stub built with mbedTLS (the TLS library
Zephyr, nRF Connect SDK and ESP-IDF devices run) performs the mutual-TLS handshake from its
slots, against `provision testserver` and `openssl s_server -Verify 1`, and names what
fails as provision.tls.client does. Debian's mbedTLS 2.28 speaks TLS 1.2 only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pki import PASSWORD, Pki
from tls_helpers import needs_openssl

import provision.device
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.dialects import mbedtls

ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "firmware_stub" / "build" / "posix" / "provision-stub"
PROVISION = Path(sys.executable).with_name("provision")


def _mbedtls() -> bool:
    return Path("/usr/include/mbedtls/x509_csr.h").exists()


@pytest.fixture(scope="module")
def stub_binary() -> Path:
    if not (shutil.which("cc") and shutil.which("make") and _mbedtls()):
        pytest.skip("needs a C compiler and libmbedtls-dev (apt install libmbedtls-dev)")
    # One make at a time in firmware_stub/build: tests/stub's builds share it (the same lock
    # as tests/stub/stub_support.make; xdist runs the two files in parallel).
    lock = ROOT / "firmware_stub" / "build" / ".make.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    built = subprocess.run(
        ["flock", str(lock), "make", "-s", "-C", str(ROOT / "firmware_stub"), "posix"],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    return STUB


@pytest.fixture
def stub(stub_binary: Path, tmp_path: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [str(stub_binary), "--tcp", "0", "--flash", str(tmp_path / "dev.flash")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def store(url: str, *slots: Slot) -> None:
    with provision.device.open(url, dialect="native") as dev:
        dev.write(CredentialSet.of(list(slots)))


def pem(tag: int, kind: SlotType, data: bytes) -> Slot:
    return Slot(tag, kind, Encoding.PEM, data)


def tag_with(pki: Pki, cert: bytes, key: bytes, root: bytes | None = None, tag: int = 42):
    return [
        pem(tag, SlotType.ROOT_CA, root or pki.root),
        pem(tag, SlotType.CLIENT_CERT, cert),
        pem(tag, SlotType.CLIENT_KEY, key),
    ]


def tls_check(url: str, port: int, *extra: str) -> tuple[int, dict]:
    done = subprocess.run(
        [str(PROVISION), "device", "tls-check", "--port", url, "--dialect", "native",
         "--server", f"localhost:{port}", "--tag", "42", "--json", *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_device_handshake_with_provision_testserver(pki: Pki, test_server, stub: str) -> None:
    server, _ = test_server()
    store(stub, *tag_with(pki, pki.client.cert, pki.client.key))
    code, report = tls_check(stub, server.port)
    assert code == 0, report
    assert report["version"] == "TLSv1.2"
    assert report["cipher"].startswith("TLS-ECDHE-")  # named the mbedTLS way
    assert report["server_verified"] is True and report["client_accepted"] is True
    assert report["accepted_as"].startswith("CN=device-1")  # the server's greeting
    assert report["server_chain"][0] == "CN=localhost"


@needs_openssl
def test_device_handshake_with_openssl_s_server(pki: Pki, s_server, stub: str) -> None:
    port = s_server()
    store(stub, *tag_with(pki, pki.client.cert, pki.client.key))
    code, report = tls_check(stub, port)
    assert code == 0, report
    assert report["version"] == "TLSv1.2" and report["client_accepted"] is True
    assert "Finished" in report["evidence"]


@pytest.mark.parametrize(
    ("case", "failure"),
    [
        ("other_root", "unknown_ca"),
        ("expired_client", "client_cert_rejected"),
        ("foreign_client", "client_cert_rejected"),
        ("stranger_key", "key_mismatch"),
        ("tls13", "protocol_mismatch"),
    ],
)
def test_device_names_the_failure(pki: Pki, test_server, stub: str, case: str, failure: str):
    server, _ = test_server()
    cert, key, root, extra = pki.client.cert, pki.client.key, pki.root, ()
    if case == "other_root":
        root = pki.other_root
    elif case == "expired_client":
        cert, key = pki.expired_client.cert, pki.expired_client.key
    elif case == "foreign_client":
        cert, key = pki.foreign_client.cert, pki.foreign_client.key
    elif case == "stranger_key":
        key = pki.stranger_key
    else:
        extra = ("--tls", "1.3")
    store(stub, *tag_with(pki, cert, key, root))
    code, report = tls_check(stub, server.port, *extra)
    assert code == 10
    if failure == "client_cert_rejected" and report["failure"] == "handshake_failed":
        # The server's alert can be lost to its TCP reset (tls_mbedtls.c): then the device
        # says that the reset came after its certificate, and claims no more.
        assert "after our certificate went out" in report["detail"], report
        return
    assert report["failure"] == failure, report


def test_encrypted_keys_mbedtls_cannot_open_are_named(pki: Pki, test_server, stub: str):
    """The PKI encrypts keys as PKCS#8 with PBES2/AES-256-CBC; mbedTLS 2.28 decrypts PBES2
    with DES and 3DES only. The device says so instead of blaming the password."""
    server, _ = test_server()
    slots = tag_with(pki, pki.client.cert, pki.client_encrypted.key)
    store(stub, *slots, Slot(42, SlotType.KEY_PASSWORD, Encoding.RAW, PASSWORD))
    code, report = tls_check(stub, server.port)
    assert code == 10
    assert report["failure"] == "bad_credentials"
    assert "mbedTLS cannot load" in report["detail"]


# What Debian's mbedTLS 2.28 cannot load of what provision.pki makes: Ed25519 certificates
# (no EdDSA in 2.28) and encrypted keys (PBES2 with AES; 2.28 decrypts DES/3DES only).
# Everything else must complete the handshake on the device. A change on either side (a new
# key type in the PKI, another mbedTLS) shows here.
MBEDTLS_REFUSES = {"ed25519", "p256-encrypted"}


def credential_kinds(pki: Pki) -> tuple[bytes, dict[str, list[Slot]]]:
    """(the issuing root, each kind's slots for tag 42): every key type provision.pki offers,
    an encrypted key with its password, DER slots, a leaf under an intermediate."""
    from cryptography.hazmat.primitives import serialization as ser

    from provision.pki.authority import create_root_ca
    from provision.pki.certs import cert_pem
    from provision.pki.keys import KeyType, serialize_private_key

    root = create_root_ca("Kinds Root")
    kinds: dict[str, list[Slot]] = {}
    for key_type in KeyType:
        key, cert = root.issue_client(
            f"dev-{key_type.value}", key_type=key_type, allow_ed25519=True
        )
        kinds[key_type.value] = tag_with(pki, cert_pem(cert), serialize_private_key(key))
    key, cert = root.issue_client("dev-enc")
    encrypted = serialize_private_key(key, password=PASSWORD)
    kinds["p256-encrypted"] = [
        *tag_with(pki, cert_pem(cert), encrypted),
        Slot(42, SlotType.KEY_PASSWORD, Encoding.RAW, PASSWORD),
    ]
    der = ser.Encoding.DER
    key_der = key.private_bytes(der, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    kinds["p256-der"] = [
        Slot(42, SlotType.ROOT_CA, Encoding.PEM, pki.root),
        Slot(42, SlotType.CLIENT_CERT, Encoding.DER, cert.public_bytes(der)),
        Slot(42, SlotType.CLIENT_KEY, Encoding.DER, key_der),
    ]
    middle = root.issue_intermediate("Kinds Intermediate")
    key, cert = middle.issue_client("dev-chain")
    chain = cert_pem(cert) + cert_pem(middle.cert)
    kinds["p256-intermediate"] = tag_with(pki, chain, serialize_private_key(key))
    return cert_pem(root.cert), kinds


def test_what_mbedtls_accepts_of_what_the_pki_makes(
    pki: Pki, stub_binary: Path, tmp_path: Path
) -> None:
    """Each kind of client credential against a server trusting its issuer: the device
    either completes the mutual handshake or says it cannot load the credential."""
    from provision.tls.material import TLSMaterial
    from provision.tls.server import TestServer

    issuer, kinds = credential_kinds(pki)
    server = TestServer(TLSMaterial((pki.root, issuer), pki.server.cert, pki.server.key))
    server.start(lambda event: None)
    refused = set()
    try:
        for name, slots in kinds.items():
            proc = subprocess.Popen(
                [str(stub_binary), "--tcp", "0", "--flash", str(tmp_path / f"{name}.flash")],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert proc.stdout
                url = proc.stdout.readline().strip()
                store(url, *slots)
                code, report = tls_check(url, server.port)
            finally:
                proc.terminate()
                proc.wait(timeout=5)
            if code != 0:
                assert report["failure"] == "bad_credentials", (name, report)
                refused.add(name)
    finally:
        server.close()
    assert refused == MBEDTLS_REFUSES
    # ...and the pre-flight check of mbedTLS-based targets warns about exactly those.
    warned = {name for name, slots in kinds.items() if mbedtls.advice(CredentialSet.of(slots))}
    assert warned == refused
