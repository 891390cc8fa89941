"""The C firmware stub built without a TLS stack (as on an MCU; the posix build without
mbedTLS): tls-check says so and offers the host-side check. The build with mbedTLS runs the
handshake itself (test_stub_mbedtls.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tls_helpers import wait_for_line

import provision.device
from provision.tls.device_check import TLSCheckUnsupported, check_on_device

FIRMWARE = Path(__file__).parents[2] / "firmware_stub"
BUILD = FIRMWARE / "build" / "no-mbedtls"
STUB = BUILD / "posix" / "provision-stub"


@pytest.fixture
def stub_url(tmp_path):
    if not (shutil.which("cc") and shutil.which("make")):
        reason = "no C compiler or make to build the posix stub"
        if os.environ.get("PROVISION_REQUIRE_TOOLCHAIN") == "1":
            pytest.fail(f"required by PROVISION_REQUIRE_TOOLCHAIN=1: {reason}")
        pytest.skip(reason)
    built = subprocess.run(
        ["make", "-s", "-C", str(FIRMWARE), "posix", "MBEDTLS=0", f"BUILD={BUILD}"],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    proc = subprocess.Popen(
        [str(STUB), "--tcp", "0", "--flash", str(tmp_path / "stub.flash")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        seen = wait_for_line(proc, b"socket://", 10)
        url = "socket://" + seen.split(b"socket://", 1)[1].split()[0].decode()
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


def test_c_stub_cannot_and_says_what_to_do_instead(stub_url):
    with provision.device.open(stub_url, dialect="native") as device:
        assert "tls_check" not in device.info().details.get("features", [])
        with pytest.raises(TLSCheckUnsupported) as caught:
            check_on_device(device, "localhost", 8443, 42)
    message = caught.value.message
    assert "cannot run a TLS handshake itself" in message
    assert "--bundle FILE --server localhost:8443 --tag 42" in message
