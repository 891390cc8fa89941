"""What a user sees while waiting, on a terminal only: a status line while probing a port and
reading slots, a transfer bar with percentage, bytes, rate and time left while writing."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import socket
import subprocess
import time

import pytest

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _on_a_terminal(args: list[str], cwd, timeout: float = 30) -> tuple[int, str]:
    """Run `provision ARGS` with stdin, stdout and stderr on a pty; its exit code and what
    the terminal showed (escape codes removed)."""
    exe = shutil.which("provision")
    assert exe, "provision is not on PATH"
    main, child = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    proc = subprocess.Popen([exe, *args], stdin=child, stdout=child, stderr=child, cwd=cwd, env=env)
    os.close(child)
    shown = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=5)
    os.close(main)
    return code, ANSI.sub("", shown.decode(errors="replace").replace("\r", "\n"))


@pytest.fixture
def bundle(cli, tmp_path):
    assert cli(["pki", "init-ca", "--no-password", "-o", tmp_path / "ca"]).exit_code == 0
    r = cli(["bundle", "pack", "--tag", "7", "--root-ca", tmp_path / "ca" / "ca.crt",
             "-o", tmp_path / "b.prvb"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return tmp_path / "b.prvb"


def test_piped_runs_show_no_status_or_bar(cli, bundle):
    r = cli(["device", "write", "--port", "sim://native", str(bundle)])
    assert r.exit_code == 0, r.output
    assert "probing" not in r.stderr and "%" not in r.stderr
    r = cli(["device", "list", "--port", "sim://native"])
    assert "reading" not in r.stderr


def test_write_on_a_terminal_shows_percentage_bytes_and_time_left(bundle, tmp_path):
    code, shown = _on_a_terminal(
        ["device", "write", "--port", "sim://native?baud=9600", str(bundle)], tmp_path
    )
    assert code == 0, shown
    bar = [line for line in shown.splitlines() if line.startswith("writing")]
    assert bar, shown
    assert re.search(r"\b100%\s+(\d+)/\1 bytes\b", bar[-1]), bar
    assert re.search(r"\d+:\d\d:\d\d|-:--:--", bar[-1]), bar  # time left
    assert "device digests verified" in shown


def test_probing_a_silent_port_says_what_it_tries(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        port = server.getsockname()[1]
        code, shown = _on_a_terminal(
            ["device", "info", "--port", f"socket://127.0.0.1:{port}", "--timeout", "0.3",
             "--retries", "0"],
            tmp_path,
        )  # fmt: skip
    finally:
        server.close()
    assert code == 8, shown
    assert "probing socket://127.0.0.1" in shown and "native … at-cmng" in shown
