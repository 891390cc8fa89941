"""The hil conformance suite against the simulator, the posix stub and the QEMU boards.

Each runs `pytest hil --port NAME` in a child process (the suite has its own options and
session fixtures). The QEMU tier uses the quick power-cut search to stay short; the full
bisection runs in `make hil` (hil/run-qemu)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from stub_support import ROOT, require


def run_hil(port: str, *extra: str, **env: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "hil", "--port", port, "-q", "-p", "no:cacheprovider",
         "-rs", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def counts(out: str) -> dict[str, int]:
    last = out.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|error)", last)}


def test_hil_suite_on_the_simulator() -> None:
    code, out = run_hil("sim")
    assert code == 0, out[-4000:]
    # In-process, a reconnect is a new device; and it runs TLS_CHECK (tests/tls covers it).
    assert counts(out).get("skipped", 0) == 2
    assert "new device session" in out and "device runs TLS_CHECK" in out


def test_hil_suite_on_the_posix_stub() -> None:
    require("cc", "make")
    code, out = run_hil("posix", "-s", PROVISION_REQUIRE_TOOLCHAIN="1")
    assert code == 0, out[-4000:]
    # Built with mbedTLS the stub runs TLS_CHECK itself (tests/tls/test_stub_mbedtls.py
    # covers the handshake; the suite's refusal check does not apply) and makes keys.
    mbedtls = Path("/usr/include/mbedtls/x509_csr.h").exists()
    assert counts(out).get("skipped", 0) == (1 if mbedtls else 0)
    assert ("device runs TLS_CHECK" in out) == mbedtls
    assert re.search(r"posix: commit completes at flash byte \d+", out)


@pytest.mark.qemu
def test_hil_suite_on_the_qemu_board() -> None:
    require("make", "arm-none-eabi-gcc", "qemu-system-arm")
    code, out = run_hil("qemu", "-s", PROVISION_REQUIRE_TOOLCHAIN="1", PROVISION_HIL_CUT="quick")
    assert code == 0, out[-4000:]
    assert counts(out).get("skipped", 0) == 0
    assert re.search(r"qemu: commit completes between flash bytes \d+ and \d+", out)


@pytest.mark.qemu
def test_hil_suite_on_the_nrf51_microbit_under_qemu() -> None:
    """The nRF5 port: UART0 by interrupt, the store in the chip's flash through the NVMC,
    that flash saved and restored around every boot (restart and power-cut tests)."""
    require("make", "arm-none-eabi-gcc", "qemu-system-arm")
    code, out = run_hil(
        "microbit", "-s", PROVISION_REQUIRE_TOOLCHAIN="1", PROVISION_HIL_CUT="quick"
    )
    assert code == 0, out[-4000:]
    assert counts(out).get("skipped", 0) == 0
    assert re.search(r"microbit: commit completes between flash bytes \d+ and \d+", out)
