"""Fixtures for the mutual-TLS tests: run-time PKI, free ports, openssl peers that always stop."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pki import Pki, make_pki
from tls_helpers import OPENSSL, free_port, wait_for_line

from provision.tls.material import TLSMaterial
from provision.tls.server import TestServer

STARTUP_TIMEOUT = 15.0


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="session")
def pki_files(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return pki.write(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def test_server(pki: Pki):
    """Start an in-process provision TestServer: test_server(roots=..., tls_version=...)."""
    servers: list[TestServer] = []

    def start(roots: tuple[bytes, ...] | None = None, tls_version: str | None = None):
        material = TLSMaterial(roots or (pki.root,), pki.server.cert, pki.server.key)
        events: list = []
        server = TestServer(material, tls_version=tls_version).start(events.append)
        servers.append(server)
        return server, events

    yield start
    for server in servers:
        server.close()


@contextlib.contextmanager
def _running(args: list[str], marker: bytes) -> Iterator[tuple[subprocess.Popen, bytes]]:
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield proc, wait_for_line(proc, marker, STARTUP_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def s_server(pki_files: dict[str, Path]):
    """Start `openssl s_server` on a free port; returns the port. Stopped at teardown.

    s_server(tls="1.3", ca="root", extra=["-verify_return_error"])
    """
    stack = contextlib.ExitStack()

    def start(*, tls: str | None = None, ca: str = "root", extra: list[str] = ()) -> int:
        assert OPENSSL is not None
        port = free_port()
        args = [
            OPENSSL,
            "s_server",
            "-Verify",
            "1",
            "-CAfile",
            str(pki_files[ca]),
            "-cert",
            str(pki_files["server_cert"]),
            "-key",
            str(pki_files["server_key"]),
            "-accept",
            f"127.0.0.1:{port}",
            *(["-tls1_2"] if tls == "1.2" else ["-tls1_3"] if tls == "1.3" else []),
            *extra,
        ]
        stack.enter_context(_running(args, b"ACCEPT"))
        return port

    with stack:
        yield start


@pytest.fixture
def testserver_cli(pki_files: dict[str, Path]):
    """Run the real `provision testserver` CLI in a subprocess; returns (port, process)."""
    stack = contextlib.ExitStack()

    def start(*args: str) -> tuple[int, subprocess.Popen]:
        exe = Path(sys.executable).with_name("provision")
        cmd = [str(exe) if exe.exists() else shutil.which("provision") or "provision"]
        proc, seen = stack.enter_context(
            _running(
                [
                    *cmd,
                    "testserver",
                    "--ca",
                    str(pki_files["root"]),
                    "--cert",
                    str(pki_files["server_cert"]),
                    "--key",
                    str(pki_files["server_key"]),
                    "--port",
                    "0",
                    *args,
                ],
                b"listening on",
            )
        )
        line = seen.split(b"listening on ", 1)[1].split(b" ", 1)[0]
        return int(line.rsplit(b":", 1)[1]), proc

    with stack:
        yield start
