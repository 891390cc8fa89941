"""Nordic's own factory tools, unchanged, against our simulated nRF91 over a pty: nrfcloud-utils'
`device_credentials_installer` (keygen → sign → write → --verify, and its onboarding CSV) and
the `nrfcredstore` command line. Only their USB port discovery is bypassed (a pty is not a
USB serial port); everything they send and check runs as against a board.

Also the Zephyr side of nrfcredstore: its TLSCredShellInterface overflows the shell's default
1,024-byte credential buffer with Nordic's own AWS root CA; the simulator must say so as
Zephyr does, and our zephyr-shell driver must refuse such an item before sending it."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("nrfcredstore", reason="nrfcredstore not installed")
pytest.importorskip("nrfcloud_utils", reason="nrfcloud-utils not installed")

from nrfcloud_utils import ca_certs, device_credentials_installer
from nrfcloud_utils.device_credentials_installer import format_cred
from nrfcredstore import cli as credstore_cli
from nrfcredstore import comms as nc
from nrfcredstore.command_interface import TLSCredShellInterface

import provision.device
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.errors import PolicyError
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem, load_certificate
from provision.pki.keys import serialize_private_key
from provision.registry import Entry, Result, open_registry
from provision.registry.export import write_export
from provision.sim.serve import build_runner, serve_pty

pytestmark = pytest.mark.slow  # nrfcredstore sleeps 0.1 s per line it reads
SEC_TAG = 1001


def serve(kind: str, options: dict[str, str]):
    """A simulated device on a new pty: (path, runner)."""
    ready = threading.Event()
    where: list[str] = []

    def on_ready(path: str) -> None:
        where.append(path)
        ready.set()

    runner = build_runner(kind, options, 115200)
    threading.Thread(target=serve_pty, args=(runner, on_ready), daemon=True).start()
    assert ready.wait(5)
    return where[0], runner


@pytest.fixture
def ports(monkeypatch):
    """Bypass the tools' USB port discovery; close every Comms they open when done."""
    opened: list[nc.Comms] = []
    original = nc.Comms.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(nc, "select_device", lambda rtt, serial, port, list_all: (
        SimpleNamespace(device=port), None))  # fmt: skip
    monkeypatch.setattr(nc.Comms, "__init__", init)
    yield opened
    for comms in opened:
        comms.close()


def close_all(opened: list) -> None:
    while opened:
        opened.pop().close()


@pytest.fixture(scope="module")
def factory_ca(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ca")
    root = create_root_ca("Factory Test CA")
    (folder / "ca.pem").write_bytes(cert_pem(root.cert))
    (folder / "ca.key").write_bytes(serialize_private_key(root.key))
    return folder / "ca.pem", folder / "ca.key"


def install(port: str, ca: tuple[Path, Path], csv: Path, *, append: bool) -> None:
    args = ["--cmd-type", "at", "--port", port, "--ca", str(ca[0]), "--ca-key", str(ca[1]),
            "-S", str(SEC_TAG), "--verify", "--csv", str(csv),
            "--log-level", "error", "-P"]  # fmt: skip
    try:
        device_credentials_installer.main([*args, "--append"] if append else args)
    except SystemExit as done:  # the installer exits 12 on a failed --verify
        assert done.code in (0, None), f"device_credentials_installer exited {done.code}"


def test_device_credentials_installer_provisions_and_verifies_and_our_export_matches_its_csv(
    ports, factory_ca, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # it looks for <id>_prv.pem files in its --path (./)
    csv = tmp_path / "onboard.csv"
    devices = [serve("at-cmng", {"seed": str(seed)}) for seed in (21, 22)]
    for i, (port, _) in enumerate(devices):
        install(port, factory_ca, csv, append=i > 0)
        close_all(ports)
    registry = str(tmp_path / "registry.sqlite")
    for port, runner in devices:
        modem = runner.device
        # Stored as sent: CR LF PEM, the AWS root CA first (the digest it verified).
        ca_entry = modem.store.entries()[(SEC_TAG, 0)]
        assert ca_entry == format_cred(ca_certs.get_ca_certs(False)).encode()
        record_from_device(port, registry)
    with open_registry(registry) as reg:
        text = io.StringIO()
        write_export(reg.iter_provisioned(), "nrfcloud", text)
    assert text.getvalue() == csv.read_text()
    uuids = [runner.device.options.uuid for _, runner in devices]
    assert [row.split(",")[0] for row in csv.read_text().split('"\n') if row] == uuids


def record_from_device(port: str, registry: str) -> None:
    """What a station records for a device the installer provisioned: our driver reads the
    UUID (signed %ATTESTTOKEN) and the installed certificate back."""
    dev = provision.device.open(port, dialect="at-cmng", baud=115200, timeout=2.0)
    try:
        token = dev.session.attestation_token()
        imei = dev.info().device_id
        cert = load_certificate(dev.read(SEC_TAG, SlotType.CLIENT_CERT), "installed certificate")
    finally:
        dev.close()
    pem = cert_pem(cert).decode()
    with open_registry(registry) as reg:
        reg.record(
            Entry(device_id=imei, result=Result.OK, station="nordic", operator="test",
                  started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:01Z",
                  cert_serial=f"{cert.serial_number:x}", cert_pem=pem, sec_tags=(SEC_TAG,),
                  device_uuid=token.device_uuid)
        )  # fmt: skip


def credstore(argv: list[str], capsys) -> str:
    credstore_cli.run(["nrfcredstore", *argv])
    return capsys.readouterr().out


def test_nrfcredstore_cli_attoken_list_write_delete_deleteall_generate(ports, capsys, tmp_path):
    port, runner = serve("at-cmng", {"seed": "5", "cfun": "1"})
    modem = runner.device
    base = [port, "--cmd-type", "at", "--timeout", "1"]

    out = credstore([*base, "attoken"], capsys)
    close_all(ports)
    token = out.split("Attestation token: ")[1].strip()
    from nrfcloud_utils.modem_credentials_parser import get_device_uuid

    assert get_device_uuid(token) == modem.options.uuid

    pem_file = tmp_path / "root.pem"
    pem_file.write_bytes(cert_pem(create_root_ca("Credstore Root").cert))
    credstore([*base, "write", "42", "ROOT_CA_CERT", str(pem_file)], capsys)
    close_all(ports)
    csr_file = tmp_path / "dev.der"
    out = credstore([*base, "generate", "43", str(csr_file)], capsys)
    close_all(ports)
    assert "New private key generated in secure tag 43" in out
    assert csr_file.read_bytes()[:1] == b"\x30"

    listing = credstore([*base, "list"], capsys)
    close_all(ports)
    digest = hashlib.sha256(pem_file.read_bytes().rstrip()).hexdigest().upper()
    assert "42           ROOT_CA_CERT" in listing and digest in listing
    assert "43           CLIENT_KEY" in listing

    credstore([*base, "delete", "42", "ROOT_CA_CERT"], capsys)  # raises if the modem refuses
    close_all(ports)
    assert (42, 0) not in modem.store.entries() and (43, 2) in modem.store.entries()
    out = credstore([*base, "deleteall"], capsys)
    close_all(ports)
    assert "All credentials deleted." in out
    left = {key for key in modem.store.entries() if key[0] < 2**31}
    assert left == set()


def test_nrfcredstore_tls_shell_overflows_zephyrs_buffer_with_the_aws_root_ca(ports):
    """What the issue saw: "Not enough room", a tail stored, only a digest check notices."""
    port, runner = serve("zephyr-shell", {})
    iface = TLSCredShellInterface(nc.Comms(port=port, baudrate=115200, timeout=1, rtscts=False))
    aws_ca = format_cred(ca_certs.get_ca_certs(False))
    assert len(base64.b64encode(aws_ca.encode())) > 1024
    iface.write_credential(42, 0, aws_ca)
    stored = runner.device.store.entries()[(42, 1)]
    assert len(stored) < len(aws_ca) and (aws_ca.encode() + b"\x00").endswith(stored)
    exists, digest = iface.check_credential_exists(42, 0)
    assert exists and digest != iface.calculate_expected_hash(aws_ca)


def test_zephyr_sim_says_not_enough_room_as_zephyr_does():
    device = build_runner("zephyr-shell", {"vt100": "0", "echo": "0"}).device
    chunk = "QUFB" * 12  # 48 characters, nrfcredstore's chunk
    out = b"".join(device.receive_data(f"cred buf {chunk}\r\n".encode()) for _ in range(21))
    assert out.count(b"Stored 48 bytes.") == 21  # 1008 characters held
    out = device.receive_data(f"cred buf {chunk}\r\n".encode())
    assert (
        b"Not enough room in credential buffer for provided data. "
        b"Increase CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE." in out
    )
    assert b"Credential buffer cleared." in out
    # tls_credentials_shell.c cred_buf_write keeps one byte free: 1,022 characters fit.
    fits = build_runner("zephyr-shell", {"vt100": "0", "echo": "0", "cmd_buff_size": "2048"}).device
    assert b"Stored 1022 bytes." in fits.receive_data(f"cred buf {'A' * 1022}\r\n".encode())
    full = build_runner("zephyr-shell", {"vt100": "0", "echo": "0", "cmd_buff_size": "2048"})
    assert b"Not enough room" in full.device.receive_data(f"cred buf {'A' * 1023}\r\n".encode())


def test_our_zephyr_driver_refuses_the_aws_root_ca_before_sending():
    aws_ca = format_cred(ca_certs.get_ca_certs(False)).encode()
    credentials = CredentialSet.of([Slot(42, SlotType.ROOT_CA, Encoding.PEM, aws_ca)])
    dev = provision.device.open("sim://zephyr-shell", dialect="zephyr-shell")
    try:
        with pytest.raises(PolicyError, match="CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE"):
            dev.write(credentials)
        assert dev.list() == []  # nothing half-written
    finally:
        dev.close()
