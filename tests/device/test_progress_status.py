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


def test_a_serial_port_reports_bytes_as_each_piece_drains():
    """At 1200 baud the OS would take a whole line at once; the count follows the pieces
    drained to the line (about a tenth of a second each), and every byte arrives."""
    import threading

    import serial

    from provision.transport.serial import PIECE_MIN, SerialTransport

    main, child = pty.openpty()
    port = serial.Serial(os.ttyname(child), 1200, timeout=0.1)
    got = bytearray()

    def drain_main() -> None:
        while len(got) < 1000:
            got.extend(os.read(main, 4096))

    reader = threading.Thread(target=drain_main, daemon=True)
    reader.start()
    sent: list[int] = []
    data = bytes(range(256)) * 3 + b"x" * 232
    try:
        SerialTransport(port, os.ttyname(child)).write_reporting(data, sent.append)
        reader.join(5)
    finally:
        port.close()
        os.close(child)
        os.close(main)
    assert bytes(got) == data
    assert sent == [min(len(data), n) for n in range(PIECE_MIN, len(data) + PIECE_MIN, PIECE_MIN)]


@pytest.fixture
def pty_sim(tmp_path):
    """`provision sim --pty` for a dialect at 9600 baud (pieces of 96 bytes)."""
    procs = []

    def start(dialect: str) -> str:
        exe = shutil.which("provision")
        assert exe, "provision is not on PATH"
        proc = subprocess.Popen(
            [exe, "sim", "--dialect", dialect, "--pty", "--json", "--baud", "9600"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        procs.append(proc)
        import json

        return json.loads(proc.stdout.readline())["port"]

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("dialect", ["at-cmng", "zephyr-shell", "native"])
def test_every_write_moves_the_bar_within_a_line_or_frame(pty_sim, bundle, tmp_path, dialect):
    from provision import device
    from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType

    root = (tmp_path / "ca" / "ca.crt").read_bytes()
    credentials = CredentialSet.of([Slot(7, SlotType.ROOT_CA, Encoding.PEM, root)])
    shown: list[tuple[int, int]] = []
    with device.open(pty_sim(dialect), dialect=dialect, baud=9600, retries=1) as dev:
        dev.provision(credentials, progress=lambda done, total: shown.append((done, total)))
    done = [d for d, _ in shown]
    total = shown[-1][1]
    assert done == sorted(set(done)) and done[-1] == total  # forward only, to the end
    # The root CA goes out as one AT line, a few cred buf lines or a couple of DATA frames;
    # the bar moved in pieces of a tenth of a second of line (96 bytes) within them.
    assert len(done) >= total // 96 - 1
    assert min(b - a for a, b in zip([0, *done], done, strict=False)) <= 96
