"""`provision device …` and `provision sim --dialect …` with the two dialects."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provision.errors import ExitCode

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
ITEMS = [
    "--tag", "42",
    "--root-ca", str(FIXTURES / "root-ca.pem"),
    "--client-cert", str(FIXTURES / "device.pem"),
    "--client-key", str(FIXTURES / "device.key"),
]  # fmt: skip


@pytest.mark.parametrize("dialect", ["at-cmng", "zephyr-shell"])
def test_info_shows_the_probed_dialect(cli, dialect):
    result = cli(["device", "info", "--port", f"sim://{dialect}", "--timeout", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dialect"] == dialect


@pytest.mark.parametrize("dialect", ["at-cmng", "zephyr-shell"])
def test_write_list_verify_delete(cli, dialect, tmp_path):
    port = f"sim://{dialect}?flash={tmp_path / 'dev.flash'}"
    base = ["--port", port, "--dialect", dialect, "--timeout", "0.5"]
    result = cli(["device", "write", *ITEMS, *base, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["dialect"] == dialect and out["verified"]
    result = cli(["device", "list", *base, "--json"])
    assert result.exit_code == 0, result.output
    assert "root_ca" in result.output and "client_key" in result.output
    result = cli(["device", "delete", *base, "--tag", "42"])
    assert result.exit_code == 0, result.output
    result = cli(["device", "list", *base, "--json"])
    assert result.exit_code == 0 and "root_ca" not in result.output


def test_zephyr_keygen_is_a_clear_policy_error(cli, tmp_path):
    result = cli(
        ["device", "keygen", "--port", "sim://zephyr-shell", "--dialect", "zephyr-shell",
         "--tag", "5", "--out", str(tmp_path / "dev.csr"), "--timeout", "0.5"]
    )  # fmt: skip
    assert result.exit_code == ExitCode.POLICY
    assert "no keygen" in result.output
    assert not (tmp_path / "dev.csr").exists()


def test_zephyr_refuses_an_encrypted_key_before_writing(cli, tmp_path):
    port = f"sim://zephyr-shell?flash={tmp_path / 'dev.flash'}"
    result = cli(
        ["device", "write", "--tag", "7", "--client-cert", str(FIXTURES / "device.pem"),
         "--client-key", str(FIXTURES / "device-encrypted.key"),
         "--key-password-file", str(FIXTURES / "device-encrypted.pw"),
         "--port", port, "--dialect", "zephyr-shell", "--timeout", "0.5"]
    )  # fmt: skip
    assert result.exit_code == ExitCode.POLICY, result.output
    assert "password-encrypted" in result.output
    listed = cli(["device", "list", "--port", port, "--dialect", "zephyr-shell", "--json"])
    assert listed.exit_code == 0 and '"client_cert"' not in listed.output


def test_at_cmng_keygen_writes_a_csr(cli, tmp_path):
    out = tmp_path / "dev.csr"
    result = cli(
        ["device", "keygen", "--port", "sim://at-cmng?cfun=1", "--dialect", "at-cmng",
         "--tag", "5", "--subject", "dev-5", "--out", str(out), "--timeout", "0.5"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"-----BEGIN CERTIFICATE REQUEST-----")


@pytest.mark.parametrize(("dialect", "probe"), [("at-cmng", b"AT\r\n"), ("zephyr-shell", b"\r\n")])
def test_provision_sim_dialect_on_a_pty(dialect, probe):
    serial = pytest.importorskip("serial")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "provision"), "sim", "--dialect", dialect, "--pty"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        path = proc.stdout.readline().decode().strip()
        assert path.startswith("/dev/"), path
        with serial.Serial(path, 115200, timeout=0.2) as port:
            port.write(probe)
            got, deadline = b"", time.monotonic() + 5
            want = b"OK" if dialect == "at-cmng" else b"uart:~$"
            while want not in got and time.monotonic() < deadline:
                got += port.read(256)
        assert want in got
    finally:
        proc.terminate()
        proc.wait(5)
