"""The real openssl binary as an independent peer for what `provision pki` writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")

PASSWORD = "peer-test-password"


def openssl(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, check=check, timeout=60
    )


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from provision.cli.main import app

    d = tmp_path_factory.mktemp("peer")
    run = CliRunner().invoke
    for args in (
        ["pki", "init-ca", "--no-password", "-o", d / "root"],
        ["pki", "init-ca", "--no-password", "-o", d / "two", "--intermediate", "Peer Issuing"],
    ):
        Path(args[4]).mkdir()
        assert run(app, [str(a) for a in args]).exit_code == 0
    env = {"PEER_PW": PASSWORD}
    for ca in ("root", "two"):
        for args in (
            ["issue", "client", "--device-id", "dev-peer", "--password-env", "PEER_PW"],
            ["issue", "server", "--san", "localhost", "--san", "127.0.0.1"],
        ):
            full = ["pki", *args, "--ca", str(d / ca), "-o", str(d / ca)]
            r = run(app, full, env=env)
            assert r.exit_code == 0, r.output
    return d


@pytest.mark.parametrize("purpose", ["sslclient", "sslserver"])
def test_openssl_verify_root_only(pki_dir: Path, purpose: str) -> None:
    d = pki_dir / "root"
    leaf = d / ("dev-peer.crt" if purpose == "sslclient" else "server.crt")
    r = openssl("verify", "-purpose", purpose, "-x509_strict", "-CAfile", d / "ca.crt", leaf)
    assert r.stdout.strip() == f"{leaf}: OK"


@pytest.mark.parametrize("purpose", ["sslclient", "sslserver"])
def test_openssl_verify_with_intermediate(pki_dir: Path, purpose: str) -> None:
    d = pki_dir / "two"
    leaf = d / ("dev-peer.crt" if purpose == "sslclient" else "server.crt")
    r = openssl(
        "verify",
        "-purpose",
        purpose,
        "-x509_strict",
        "-CAfile",
        d / "ca.crt",
        "-untrusted",
        d / "intermediate.crt",
        leaf,
    )
    assert r.stdout.strip() == f"{leaf}: OK"
    # Without the intermediate there is no path: the check above is not vacuous.
    r = openssl("verify", "-purpose", purpose, "-CAfile", d / "ca.crt", leaf, check=False)
    assert r.returncode != 0


def test_openssl_rejects_wrong_purpose(pki_dir: Path) -> None:
    d = pki_dir / "root"
    r = openssl(
        "verify", "-purpose", "sslserver", "-CAfile", d / "ca.crt", d / "dev-peer.crt", check=False
    )
    assert r.returncode != 0


def test_openssl_pkey_opens_encrypted_key(pki_dir: Path, tmp_path: Path) -> None:
    key = pki_dir / "root" / "dev-peer.key"
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    r = openssl("pkey", "-in", key, "-passin", f"file:{pw}", "-pubout")
    pub = r.stdout
    r = openssl("x509", "-in", pki_dir / "root" / "dev-peer.crt", "-noout", "-pubkey")
    assert r.stdout == pub
    pw.write_text("not-the-password")
    assert openssl("pkey", "-in", key, "-passin", f"file:{pw}", check=False).returncode != 0


def test_openssl_reads_path_length_and_hostname(pki_dir: Path) -> None:
    d = pki_dir / "two"
    text = openssl("x509", "-in", d / "intermediate.crt", "-noout", "-text").stdout
    assert "CA:TRUE, pathlen:0" in text
    r = openssl(
        "verify",
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "localhost",
        "-CAfile",
        d / "ca.crt",
        "-untrusted",
        d / "intermediate.crt",
        d / "server.crt",
    )
    assert r.returncode == 0
    r = openssl(
        "verify",
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "evil.example",
        "-CAfile",
        d / "ca.crt",
        "-untrusted",
        d / "intermediate.crt",
        d / "server.crt",
        check=False,
    )
    assert r.returncode != 0


def test_sign_csr_made_by_openssl(cli, pki_dir: Path, tmp_path: Path) -> None:
    key, csr, crt = tmp_path / "k.pem", tmp_path / "d.csr", tmp_path / "d.crt"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", "/CN=dev-openssl", "-out", csr)
    r = cli(
        [
            "pki",
            "sign-csr",
            csr,
            "--ca",
            pki_dir / "two",
            "--device-id",
            "dev-openssl",
            "--out",
            crt,
        ]
    )
    assert r.exit_code == 0, r.output
    d = pki_dir / "two"
    r = openssl(
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        d / "ca.crt",
        "-untrusted",
        d / "intermediate.crt",
        crt,
    )
    assert r.stdout.strip().endswith("OK")


def test_openssl_verifies_our_csr(cli, tmp_path: Path) -> None:
    r = cli(["pki", "csr", "--cn", "srv", "--name", "srv", "-o", tmp_path])
    assert r.exit_code == 0
    r = openssl("req", "-in", tmp_path / "srv.csr", "-noout", "-verify")
    assert "verify OK" in (r.stdout + r.stderr)
