"""A port that never yields a device (here: an at-cmng jig, the station speaks native) is
not a silent wait: without the live table, `line run` says once why, on stderr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from provision.errors import ExitCode

CONFIG = """
station = "st-wait"
registry = "reg.sqlite"
dialect = "native"
device_timeout = 1.0
poll_interval = 0.05
[ca]
cert = "ca.crt"
key = "ca.key"
"""


def test_wrong_dialect_port_is_named_with_its_reason(ca_dir: Path, jig) -> None:
    (ca_dir / "station.toml").write_text(CONFIG)
    port = jig("at-cmng")
    exe = Path(sys.executable).with_name("provision")
    proc = subprocess.Popen(
        [str(exe), "line", "run", str(ca_dir / "station.toml"), "-p", port, "-n", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Ctrl-C's default, whatever the test runner inherited (a CI script in the
        # background runs with SIGINT ignored, and line run keeps an ignored SIGINT ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline().decode()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert first.startswith(f"{port}: no device to work on yet (link.timeout: no answer to HELLO")
    assert "check the board, the port and the dialect (native)" in first
    assert (first + err.decode()).count("no device to work on yet") == 1
    assert out == b"" and proc.returncode == ExitCode.INTERRUPTED
