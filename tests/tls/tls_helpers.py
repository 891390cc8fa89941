"""What the mutual-TLS tests import (a module of its own: `from conftest import …` finds
whichever conftest was imported first when several test folders run together)."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import time

import pytest

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl binary not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_line(proc: subprocess.Popen, marker: bytes, timeout: float) -> bytes:
    """Read proc's stdout until a line contains `marker`; fail with what was seen."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            raise AssertionError(f"peer did not start: {seen.decode(errors='replace')[-500:]}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                continue
            seen += chunk
    return seen
