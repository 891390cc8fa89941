"""An existing host tool, Nordic's nrfcredstore, unchanged against the simulators over a pty.

Only its port discovery is bypassed (it enumerates USB serial ports, which a pty is not);
its command code, parsing and digest checks run as they do against a board.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("nrfcredstore", reason="nrfcredstore not installed (pip install nrfcredstore)")

from nrfcredstore import comms as nc
from nrfcredstore.command_interface import ATCommandInterface, TLSCredShellInterface
from nrfcredstore.credstore import CredStore, CredType

from provision.sim.serve import build_runner, serve_pty

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
pytestmark = pytest.mark.slow  # nrfcredstore sleeps 0.1 s per line it reads


def serve(kind: str, options: dict[str, str]) -> str:
    ready = threading.Event()
    where: list[str] = []

    def on_ready(path: str) -> None:
        where.append(path)
        ready.set()

    runner = build_runner(kind, options, 115200)
    threading.Thread(target=serve_pty, args=(runner, on_ready), daemon=True).start()
    assert ready.wait(5)
    return where[0]


def comms_for(path: str, monkeypatch) -> nc.Comms:
    monkeypatch.setattr(nc, "select_device", lambda *args: (SimpleNamespace(device=path), None))
    return nc.Comms(port=path, baudrate=115200, timeout=1, rtscts=False)


def test_nrfcredstore_at_interface(monkeypatch):
    path = serve("at-cmng", {"cfun": "1"})
    iface = ATCommandInterface(comms_for(path, monkeypatch))
    iface.enable_error_codes()
    store = CredStore(iface)
    assert iface.get_imei() is not None and len(iface.get_imei()) == 15
    assert store.func_mode(4)
    pem = (FIXTURES / "root-ca.pem").read_text()
    store.write(42, CredType.ROOT_CA_CERT, io.StringIO(pem))
    (cred,) = store.list(42)
    assert (cred.tag, cred.type) == (42, CredType.ROOT_CA_CERT)
    assert cred.sha == iface.calculate_expected_hash(pem.rstrip())

    class Keep(io.BytesIO):
        def close(self) -> None:
            self.kept = self.getvalue()

    csr = Keep()
    store.keygen(43, csr, "CN=dev-43")
    assert csr.kept[:1] == b"\x30"
    store.delete(42, CredType.ROOT_CA_CERT)
    assert store.list(42) == []


def test_nrfcredstore_tls_credentials_shell(monkeypatch):
    path = serve("zephyr-shell", {})
    iface = TLSCredShellInterface(comms_for(path, monkeypatch))
    pem = (FIXTURES / "root-ca.pem").read_text()
    assert iface.write_credential(42, 0, pem)
    exists, digest = iface.check_credential_exists(42, 0)
    assert exists and digest == iface.calculate_expected_hash(pem)
    assert iface.delete_credential(42, 0)
    assert iface.check_credential_exists(42, 0) == (False, None)


def test_nrfcredstore_at_shell_mode(monkeypatch):
    """Its shell mode (`--cmd-type auto` finds it with `at AT+CGSN`) sends `at '<command>'`
    with each line feed as the two characters \\n, which only a build with
    CONFIG_AT_SHELL_UNESCAPE_LF turns back into line ends: CR LF (at_shell.c). The modem then
    stores CR LF PEM, so its digest is not the one nrfcredstore computes over LF text, and
    modem firmware that refuses CR LF (mfw 2.0.2 field report, crlf_invalid) answers 527."""
    import hashlib

    options = {"cmd_buff_size": "4096", "unescape_lf": "1", "crlf_invalid": "0", "cfun": "1"}
    iface = ATCommandInterface(comms_for(serve("at-shell", options), monkeypatch))
    iface.detect_shell_mode()
    assert iface.shell
    iface.enable_error_codes()
    store = CredStore(iface)
    assert len(iface.get_imei()) == 15
    assert store.func_mode(4)
    pem = (FIXTURES / "root-ca.pem").read_text()
    store.write(42, CredType.ROOT_CA_CERT, io.StringIO(pem))
    (cred,) = store.list(42)
    crlf = pem.rstrip().replace("\n", "\r\n").encode()
    assert cred.sha == hashlib.sha256(crlf).hexdigest().upper()
    assert cred.sha != iface.calculate_expected_hash(pem.rstrip())
    store.delete(42, CredType.ROOT_CA_CERT)
    assert store.list(42) == []
