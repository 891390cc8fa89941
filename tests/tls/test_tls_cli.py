"""`provision device tls-check` and `provision testserver` through the real CLI."""

from __future__ import annotations

import json

import pytest
from pki import PASSWORD

import provision.device
from provision.bundle.format import encode
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.errors import ExitCode

DEVICE_TLS = ["device", "tls-check"]


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


def creds(pki, pair=None, tag=42, root=None) -> CredentialSet:
    pair = pair or pki.client
    return CredentialSet.of(
        [
            Slot(tag, SlotType.ROOT_CA, Encoding.PEM, root or pki.root),
            Slot(tag, SlotType.CLIENT_CERT, Encoding.PEM, pair.cert),
            Slot(tag, SlotType.CLIENT_KEY, Encoding.PEM, pair.key),
        ],
        device_id="device-1",
    )


@pytest.fixture
def bundle(tmp_path, pki):
    def make(credentials: CredentialSet, name: str = "device.prvb"):
        path = tmp_path / name
        path.write_bytes(encode(credentials))
        return path

    return make


def test_bundle_check_succeeds_and_prints_the_report(cli, pki, test_server, bundle):
    server, _ = test_server()
    result = cli([*DEVICE_TLS, "--bundle", bundle(creds(pki)), "--server", server.address])
    assert result.exit_code == 0, result.output
    for expected in (
        "TLSv1.",
        "CN=localhost <- CN=Provision Test Root",
        "as CN=device-1,O=provision tests",
        "mutual TLS handshake accepted",
    ):
        assert expected in flat(result.output)
    assert "PRIVATE KEY" not in result.output


def test_bundle_check_json(cli, pki, test_server, bundle):
    server, _ = test_server()
    args = [*DEVICE_TLS, "--bundle", bundle(creds(pki)), "--server", server.address]
    result = cli([*args, "--tag", "42", "--tls", "1.2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True and data["version"] == "TLSv1.2" and data["sec_tag"] == 42
    assert data["failure"] is None


def test_failed_check_exits_tls_with_a_named_failure(cli, pki, test_server, bundle):
    server, _ = test_server()
    path = bundle(creds(pki, pair=pki.expired_client))
    result = cli([*DEVICE_TLS, "--bundle", path, "--server", server.address])
    assert result.exit_code == ExitCode.TLS
    assert "client_cert_rejected" in result.output and "expired" in result.output


def test_tag_is_required_when_several_tags_hold_certificates(cli, pki, bundle):
    both = CredentialSet.of([*creds(pki, tag=1), *creds(pki, tag=2)])
    result = cli([*DEVICE_TLS, "--bundle", bundle(both), "--server", "localhost:1"])
    assert result.exit_code == ExitCode.INPUT
    assert "give --tag" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--server", "localhost"], "HOST:PORT"),
        (["--server", "localhost:443"], "--port URL"),
        (["--server", "localhost:443", "--bundle", "/nonexistent.prvb"], "not found"),
    ],
)
def test_bad_command_lines_are_one_line_errors(cli, args, words):
    result = cli([*DEVICE_TLS, *args])
    assert result.exit_code == ExitCode.INPUT
    assert words in result.output
    assert "Traceback" not in result.output


def test_bad_tls_version_is_a_usage_error(cli):
    result = cli([*DEVICE_TLS, "--server", "h:1", "--bundle", "x", "--tls", "1.1"])
    assert result.exit_code == 2


def test_device_check_through_a_simulated_native_device(cli, pki, test_server, tmp_path):
    server, events = test_server()
    url = f"sim://native?flash={tmp_path / 'dev.flash'}"
    with provision.device.open(url, dialect="native") as device:
        device.write(creds(pki))
    # A new session: the device answers from what its flash holds.
    result = cli([*DEVICE_TLS, "--port", url, "--server", server.address])
    assert result.exit_code == 0, result.output
    assert "(native), with its own slots" in flat(result.output)
    assert "mutual TLS handshake accepted" in result.output
    server.stop()
    assert [e.subject for e in events] == ["CN=device-1,O=provision tests"]


def test_target_without_tls_check_points_to_the_bundle(cli, pki, test_server, tmp_path):
    server, _ = test_server()
    url = f"sim://native?tls=0&flash={tmp_path / 'dev.flash'}"
    with provision.device.open(url, dialect="native") as device:
        device.write(creds(pki))
    result = cli([*DEVICE_TLS, "--port", url, "--server", server.address, "--tag", "42"])
    assert result.exit_code == ExitCode.DEVICE
    assert "cannot run a TLS handshake itself" in flat(result.output)
    assert "--bundle FILE" in flat(result.output)


def test_testserver_missing_file_and_bad_version(cli, pki_files):
    base = ["testserver", "--cert", pki_files["server_cert"], "--key", pki_files["server_key"]]
    result = cli([*base, "--ca", "/nonexistent/root.pem", "--port", "0"])
    assert result.exit_code == ExitCode.INPUT and "not found" in result.output
    result = cli([*base, "--ca", pki_files["root"], "--port", "0", "--tls", "1.4"])
    assert result.exit_code == 2


def test_testserver_encrypted_key_needs_a_password_source(cli, pki_files, tmp_path):
    key = tmp_path / "server_key_enc.pem"
    from provision.pki.keys import load_private_key, serialize_private_key

    plain = load_private_key(pki_files["server_key"].read_bytes(), None, "test")
    key.write_bytes(serialize_private_key(plain, password=PASSWORD))
    args = ["testserver", "--ca", pki_files["root"], "--cert", pki_files["server_cert"]]
    result = cli([*args, "--key", key, "--port", "0"])
    assert result.exit_code == ExitCode.INPUT
    assert "--password-file" in result.output
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    result = cli([*args, "--key", key, "--port", "0", "--password-file", wrong])
    # The operator's own key and password: bad input, as in the README's exit code table.
    assert result.exit_code == ExitCode.INPUT
    assert "wrong password" in result.output and "nope" not in result.output
    assert str(key) in result.output


def test_testserver_with_encrypted_key_serves(pki, pki_files, tmp_path, testserver_cli):
    from provision.tls.client import handshake
    from provision.tls.material import TLSMaterial

    port, proc = testserver_cli("--once", "--password-file", str(pki_files["password"]))
    # The fixture passes the plain key; a password file for a plain key is simply unused.
    report = handshake("127.0.0.1", port, TLSMaterial((pki.root,), pki.client.cert, pki.client.key))
    assert report.ok, report.summary()
    proc.wait(timeout=10)
    assert proc.returncode == 0


def test_testserver_json_lines(pki, pki_files):
    import subprocess
    import sys
    from pathlib import Path

    from tls_helpers import wait_for_line

    from provision.tls.client import handshake
    from provision.tls.material import TLSMaterial

    exe = Path(sys.executable).with_name("provision")
    args = [str(exe), "testserver", "--ca", str(pki_files["root"]), "--port", "0", "--once"]
    args += ["--cert", str(pki_files["server_cert"]), "--key", str(pki_files["server_key"])]
    proc = subprocess.Popen([*args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = json.loads(wait_for_line(proc, b"\n", 15).splitlines()[0])
        assert first["event"] == "listening" and first["address"].startswith("127.0.0.1:")
        port = int(first["address"].rsplit(":", 1)[1])
        material = TLSMaterial((pki.root,), pki.client.cert, pki.client.key)
        assert handshake("127.0.0.1", port, material).ok
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    event = json.loads(out.decode().strip().splitlines()[-1])
    assert event["event"] == "client" and event["accepted"] is True
    assert event["subject"] == "CN=device-1,O=provision tests"


def test_port_and_bundle_falls_back_to_the_host_for_a_target_that_cannot(
    cli, pki, test_server, tmp_path, bundle
):
    server, _ = test_server()
    url = f"sim://native?tls=0&flash={tmp_path / 'dev.flash'}"
    with provision.device.open(url, dialect="native") as device:
        device.write(creds(pki))
    path = bundle(creds(pki))
    result = cli([*DEVICE_TLS, "--port", url, "--bundle", path, "--server", server.address])
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "host, with the slots of" in text and "(the device cannot:" in text
    assert "TLS_CHECK feature" in text
    assert "mutual TLS handshake accepted" in text


def test_port_and_bundle_uses_the_device_when_it_can(cli, pki, test_server, tmp_path, bundle):
    server, _ = test_server()
    url = f"sim://native?flash={tmp_path / 'dev.flash'}"
    with provision.device.open(url, dialect="native") as device:
        device.write(creds(pki))
    path = bundle(creds(pki, root=pki.other_root))  # would fail: proves the device ran it
    result = cli([*DEVICE_TLS, "--port", url, "--bundle", path, "--server", server.address])
    assert result.exit_code == 0, result.output
    assert "(native), with its own slots" in flat(result.output)
