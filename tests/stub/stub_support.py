"""Helpers for the C firmware stub tier: its C tests, footprint, fuzzing and the hil suite
on the posix stub and on QEMU. Each test needs tools a developer machine may lack; it is
then skipped with the command that installs them. In CI, PROVISION_REQUIRE_TOOLCHAIN=1
makes a missing tool a failure instead."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "firmware_stub"
APT = {
    "cc": "build-essential",
    "make": "make",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "clang": "clang libclang-rt-14-dev",
}


def require(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if not missing:
        return
    packages = " ".join(dict.fromkeys(APT.get(t, t) for t in missing))
    reason = (
        f"{', '.join(missing)} not installed; to run this tier: "
        f"sudo apt-get install --no-install-recommends {packages}"
    )
    if os.environ.get("PROVISION_REQUIRE_TOOLCHAIN") == "1":
        pytest.fail(f"PROVISION_REQUIRE_TOOLCHAIN=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def libfuzzer_available() -> bool:
    """clang can link -fsanitize=fuzzer (Debian ships the runtime in libclang-rt-*-dev)."""
    probe = subprocess.run(
        ["clang", "-fsanitize=fuzzer", "-x", "c", "-o", os.devnull, "-"],
        input=b"#include <stdint.h>\n#include <stddef.h>\n"
        b"int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n",
        capture_output=True,
    )
    return probe.returncode == 0


def make(*targets: str, **env: str) -> subprocess.CompletedProcess[str]:
    """make in firmware_stub, one at a time across processes (pytest-xdist workers share
    firmware_stub/build)."""
    lock = STUB / "build" / ".make.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        return subprocess.run(
            ["make", "-C", str(STUB), *targets],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        )
