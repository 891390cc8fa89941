"""Independent peers: openssl s_server judges our client, openssl s_client judges our server."""

from __future__ import annotations

import subprocess

import pytest
from tls_helpers import OPENSSL, needs_openssl

from provision.tls.client import handshake
from provision.tls.material import TLSMaterial
from provision.tls.report import Failure

pytestmark = needs_openssl


def material(pki, pair=None, roots=None) -> TLSMaterial:
    pair = pair or pki.client
    return TLSMaterial(roots or (pki.root,), pair.cert, pair.key)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_s_server_accepts_our_handshake(pki, s_server, version):
    # The exact command of the issue: -Verify 1 -CAfile root -cert server -key server.
    port = s_server(tls=version)
    report = handshake("localhost", port, material(pki))
    assert report.ok, report.summary()
    assert report.version == f"TLSv{version}"
    assert report.server_chain[0] == "CN=localhost"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize(
    ("which", "expect"),
    [("expired_client", "expired"), ("foreign_client", "CA")],
)
def test_s_server_rejections_are_named(pki, s_server, version, which, expect):
    # Without -verify_return_error s_server logs a verify error and carries on regardless.
    port = s_server(tls=version, extra=["-verify_return_error"])
    report = handshake("localhost", port, material(pki, getattr(pki, which)))
    assert report.failure is Failure.CLIENT_CERT_REJECTED
    assert expect in report.detail
    assert not report.ok


def test_s_server_requiring_a_different_ca_rejects_us(pki, s_server):
    port = s_server(ca="other_root", extra=["-verify_return_error"])
    report = handshake("localhost", port, material(pki))
    assert report.failure is Failure.CLIENT_CERT_REJECTED
    assert "CA" in report.detail


def test_unknown_ca_against_s_server(pki, s_server):
    port = s_server()
    report = handshake("localhost", port, material(pki, roots=(pki.other_root,)))
    assert report.failure is Failure.UNKNOWN_CA


def s_client(port: int, files, cert: str, key: str, version: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-cert",
            str(files[cert]),
            "-key",
            str(files[key]),
            "-CAfile",
            str(files["root"]),
            "-verify_return_error",
            "-ign_eof",
            f"-tls1_{version[-1]}",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
    )


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_s_client_completes_against_provision_testserver(pki_files, testserver_cli, version):
    port, proc = testserver_cli("--once", "--tls", version)
    done = s_client(port, pki_files, "client_cert", "client_key", version)
    assert done.returncode == 0, done.stdout.decode()[-800:]
    assert b"ACCEPTED CN=device-1,O=provision tests" in done.stdout
    assert f"TLSv{version}".encode() in done.stdout
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"accepted 127.0.0.1:" in out
    assert b"CN=device-1,O=provision tests (TLSv" + version.encode() in out


def test_testserver_rejects_expired_client_from_s_client(pki_files, testserver_cli):
    port, proc = testserver_cli("--once")
    done = s_client(port, pki_files, "expired_cert", "expired_key", "1.3")
    assert b"ACCEPTED" not in done.stdout
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 10  # ExitCode.TLS
    assert b"rejected 127.0.0.1:" in out and b"certificate has expired" in out
