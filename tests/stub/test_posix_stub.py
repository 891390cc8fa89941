"""The posix stub as users run it: `provision device …` over a pseudo-terminal, the
stdin/stdout mode, and the simulated power cut."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from stub_support import ROOT, STUB, make, require

from provision.bundle import format as bundle_format
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.link import framing
from provision.link import messages as m

BINARY = STUB / "build" / "posix" / "provision-stub"
FIXTURES = ROOT / "tests" / "vectors" / "fixtures"
PROVISION = Path(sys.executable).with_name("provision")


@pytest.fixture(scope="module")
def stub() -> Path:
    require("cc", "make")
    result = make("posix")
    assert result.returncode == 0, result.stderr[-2000:]
    return BINARY


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROVISION), *args], capture_output=True, text=True, timeout=60)


# 16: flash that programs whole 16-byte blocks only (STM32H7-like); the host's DATA chunks
# do not fall on block boundaries, so the stub's staging has to assemble blocks.
@pytest.mark.parametrize("write_block", ["1", "16"])
def test_cli_writes_lists_and_verifies_over_a_pty(
    stub: Path, tmp_path: Path, write_block: str
) -> None:
    proc = subprocess.Popen(
        [str(stub), "--pty", "--flash", str(tmp_path / "dev.flash"), "--write-block", write_block],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout
        pty = proc.stdout.readline().strip()
        assert pty.startswith("/dev/")
        items = [
            "--tag", "42",
            "--root-ca", str(FIXTURES / "root-ca.pem"),
            "--client-cert", str(FIXTURES / "device.pem"),
            "--client-key", str(FIXTURES / "device.key"),
        ]  # fmt: skip
        wrote = cli("device", "write", "--port", pty, *items, "--json")
        assert wrote.returncode == 0, wrote.stderr
        assert json.loads(wrote.stdout)["verified"] is True
        listed = json.loads(cli("device", "list", "--port", pty, "--json").stdout)
        assert [(s["sec_tag"], s["slot"]) for s in listed["slots"]] == [
            (42, "root_ca"),
            (42, "client_cert"),
            (42, "client_key"),
        ]
        assert listed["slots"][1]["subject"] == "CN=dev-0001"  # READ of the certificate
        assert cli("device", "verify", "--port", pty, *items).returncode == 0
        info = json.loads(cli("device", "info", "--port", pty, "--json").stdout)
        assert "provision-stub" in json.dumps(info)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def exchange(stub: Path, flash: Path, *msgs: m.Message, extra: tuple[str, ...] = ()) -> tuple:
    """Send requests on stdin, close it, decode everything the stub wrote to stdout."""
    wire = b"".join(framing.pack(m.encode(msg, seq)) for seq, msg in enumerate(msgs, 1))
    done = subprocess.run(
        [str(stub), "--flash", str(flash), *extra], input=wire, capture_output=True, timeout=30
    )
    decoder = framing.FrameDecoder(m.HEADER_SIZE + m.MAX_PAYLOAD)
    frames = [m.decode(body) for body in decoder.feed(done.stdout)]
    return done.returncode, frames


def test_stdin_stdout_mode_and_persistent_flash(stub: Path, tmp_path: Path) -> None:
    flash = tmp_path / "dev.flash"
    code, frames = exchange(stub, flash, m.Hello(1, 512), m.ListSlots(0))
    assert code == 0
    assert [type(f.message) for f in frames] == [m.HelloInfo, m.ListPage]
    assert frames[1].message.total == 0
    assert flash.stat().st_size == 3 * 32 * 1024 and set(flash.read_bytes()) == {0xFF}


def test_power_cut_exits_75_and_the_old_set_stays(stub: Path, tmp_path: Path) -> None:

    flash = tmp_path / "dev.flash"
    bundle = bundle_format.encode(
        CredentialSet.of([Slot(3, SlotType.PSK, Encoding.RAW, b"s" * 32)])
    )
    transfer = [
        m.Hello(1, 512),
        m.Begin(1, len(bundle), 200, hashlib.sha256(bundle).digest()),
        *[m.Data(1, off, bundle[off : off + 200]) for off in range(0, len(bundle), 200)],
        m.Commit(1),
    ]
    # Power goes after 5,000 flash bytes: during the commit's bank erase.
    code, frames = exchange(stub, flash, *transfer, extra=("--cut-after", "5000"))
    assert code == 75
    assert not any(isinstance(f.message, m.Committed) for f in frames)
    code, frames = exchange(stub, flash, m.Hello(1, 512), m.ListSlots(0))
    assert code == 0 and frames[1].message.total == 0  # the old (empty) set
    code, frames = exchange(stub, flash, *transfer)
    assert isinstance(frames[-1].message, m.Committed)
    code, frames = exchange(stub, flash, m.Hello(1, 512), m.ListSlots(0))
    assert frames[1].message.total == 1


def mbedtls_build() -> None:
    if not Path("/usr/include/mbedtls/x509_csr.h").exists():
        require("libmbedtls-dev")  # skips (or fails in CI) with the package to install


@pytest.fixture
def tcp_stub(stub: Path, tmp_path: Path):
    """Start the posix stub on TCP with extra options; yields its URL. Stopped at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> str:
        proc = subprocess.Popen(
            [str(stub), "--tcp", "0", "--flash", str(tmp_path / f"dev{len(procs)}.flash"), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout
        return proc.stdout.readline().strip()

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=5)


def test_keygen_makes_the_key_on_the_device_and_a_csr_that_verifies(
    tcp_stub, tmp_path: Path
) -> None:
    mbedtls_build()
    url = tcp_stub()
    info = json.loads(cli("device", "info", "--port", url, "--json").stdout)
    assert "keygen" in json.dumps(info) and "tls_check" in json.dumps(info)
    ca = tmp_path / "ca"
    assert (
        cli("pki", "init-ca", "--no-password", "-o", str(ca), "--cn", "Stub Root").returncode == 0
    )
    csr = tmp_path / "dev.csr"
    made = cli("device", "keygen", "--port", url, "--tag", "42", "-o", str(csr),
               "--subject", "dev-stub", "--ca", str(ca))  # fmt: skip
    assert made.returncode == 0, made.stderr
    checked = subprocess.run(
        ["openssl", "req", "-in", str(csr), "-noout", "-verify", "-subject"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0 and "CN = dev-stub" in checked.stdout, checked.stderr
    listed = json.loads(cli("device", "list", "--port", url, "--json").stdout)
    assert [(s["sec_tag"], s["slot"]) for s in listed["slots"]] == [
        (42, "client_cert"),
        (42, "client_key"),
    ]
    # The key never leaves: READ of a client_key is refused by the device.
    with socket_link(url) as link:
        frames = link(m.Hello(1, 512), m.Read(42, int(SlotType.CLIENT_KEY), 0, 400))
    assert frames[-1].message.code == m.ErrorCode.FORBIDDEN


def socket_link(url: str):
    """A raw native link over the stub's TCP port: send requests, decode the answers."""
    import contextlib
    import socket

    @contextlib.contextmanager
    def opened():
        host, port = url.removeprefix("socket://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:

            def exchange(*msgs: m.Message) -> list:
                decoder = framing.FrameDecoder(m.HEADER_SIZE + m.MAX_PAYLOAD)
                frames: list = []
                for seq, msg in enumerate(msgs, 1):
                    sock.sendall(framing.pack(m.encode(msg, seq)))
                    while len(frames) < seq:
                        frames += [m.decode(b) for b in decoder.feed(sock.recv(4096))]
                return frames

            yield exchange

    return opened()


def test_signed_only_stub_applies_bundles_signed_with_its_key_only(
    tcp_stub, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    mbedtls_build()
    url = tcp_stub("--signer", str(FIXTURES / "signer.pub.der"))
    info = json.loads(cli("device", "info", "--port", url, "--json").stdout)
    assert "signed_only" in json.dumps(info)
    items = ["--tag", "42", "--root-ca", str(FIXTURES / "root-ca.pem")]
    unsigned = cli("device", "write", "--port", url, *items)
    assert unsigned.returncode != 0 and "signed" in unsigned.stderr
    other = tmp_path / "other.key"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    other.chmod(0o600)
    wrong = cli("device", "write", "--port", url, *items, "--sign-key", str(other))
    assert wrong.returncode != 0 and "signature" in wrong.stderr
    assert json.loads(cli("device", "list", "--port", url, "--json").stdout)["slots"] == []
    signed = cli("device", "write", "--port", url, *items,
                 "--sign-key", str(FIXTURES / "signer.key"))  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    listed = json.loads(cli("device", "list", "--port", url, "--json").stdout)
    assert [(s["sec_tag"], s["slot"]) for s in listed["slots"]] == [(42, "root_ca")]


def test_signer_must_be_a_p256_key(stub: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    mbedtls_build()
    p384 = tmp_path / "p384.pub"
    p384.write_bytes(
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for signer, says in ((p384, "P-256"), (FIXTURES / "psk.hex", "not a public key")):
        done = subprocess.run(
            [str(stub), "--flash", str(tmp_path / "f"), "--signer", str(signer)],
            capture_output=True, text=True, input="",
        )  # fmt: skip
        assert done.returncode == 2 and says in done.stderr, done.stderr


def test_line_device_keygen_flow_provisions_the_posix_stub_with_its_own_key(
    tcp_stub, tmp_path: Path
) -> None:
    """`provision line run` with flow = "device-keygen" on the stub built with mbedTLS: the
    stub makes the key and the CSR, the line issues and installs the certificate, verifies
    it, and the stub proves it with its own mutual-TLS handshake (the key matches)."""
    import sqlite3

    from cryptography import x509

    from provision.pki.authority import create_root_ca
    from provision.pki.certs import cert_pem
    from provision.pki.keys import serialize_private_key
    from provision.registry import Result, open_registry
    from provision.tls.material import TLSMaterial
    from provision.tls.server import TestServer

    mbedtls_build()
    url = tcp_stub()
    ca = create_root_ca("Stub Line CA")
    (tmp_path / "ca.crt").write_bytes(cert_pem(ca.cert))
    (tmp_path / "ca.key").write_bytes(serialize_private_key(ca.key))
    (tmp_path / "ca.key").chmod(0o600)
    server_key, server_cert = ca.issue_server(["localhost", "127.0.0.1"])
    material = TLSMaterial(
        (cert_pem(ca.cert),), cert_pem(server_cert), serialize_private_key(server_key)
    )
    server = TestServer(material).start(lambda event: None)
    try:
        (tmp_path / "station.toml").write_text(
            'station = "stub-1"\nregistry = "reg.sqlite"\ndialect = "native"\n'
            f'ports = ["{url}"]\nflow = "device-keygen"\n'
            '[ca]\ncert = "ca.crt"\nkey = "ca.key"\n'
            '[[sec_tags]]\nsec_tag = 42\nclient = true\nroots = ["ca.crt"]\n'
            # A name, not 127.0.0.1: mbedTLS 2.28 matches DNS names only, not IP SANs.
            f'[proof]\nserver = "localhost:{server.port}"\ntls = "1.2"\n'
        )
        ran = cli("line", "run", str(tmp_path / "station.toml"), "--count", "1", "--json",
                  "--no-live", "--operator", "t")  # fmt: skip
    finally:
        server.close()
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in ran.stdout.splitlines() if line.startswith("{")]
    device = next(line for line in lines if line.get("status"))
    assert device["status"] == "ok", device
    assert lines[-1]["counts"] == {"ok": 1}
    # The stub's own handshake with its own key, which the server verified against the CA.
    assert device["proof"]["result"] == "accepted", device["proof"]
    device_id = device["device_id"]

    with open_registry(str(tmp_path / "reg.sqlite")) as reg:
        rec = reg.latest(device_id)
    assert rec is not None and rec.result is Result.OK
    cert = x509.load_pem_x509_certificate(rec.cert_pem.encode())
    assert cert.subject.rfc4514_string() == f"CN={device_id}"
    # The key never left the device: no private key anywhere in the registry.
    with sqlite3.connect(tmp_path / "reg.sqlite") as db:
        dump = "\n".join(db.iterdump())
    assert "PRIVATE KEY" not in dump and rec.cert_pem.strip() in dump

    listed = json.loads(cli("device", "list", "--port", url, "--json").stdout)
    slots = {(s["sec_tag"], s["slot"]): s for s in listed["slots"]}
    assert set(slots) == {(42, "root_ca"), (42, "client_cert"), (42, "client_key")}
    assert slots[(42, "client_cert")]["subject"] == f"CN={device_id}"
    with socket_link(url) as link:
        frames = link(m.Hello(1, 512), m.Read(42, int(SlotType.CLIENT_KEY), 0, 400))
    assert frames[-1].message.code == m.ErrorCode.FORBIDDEN
    # The key the certificate names is the one mbedTLS made in the stub's flash.
    import re

    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    flash = (tmp_path / "dev0.flash").read_bytes()
    pem_key = rb"-----BEGIN EC PRIVATE KEY-----.+?-----END EC PRIVATE KEY-----"
    found = re.findall(pem_key, flash, re.S)
    assert found
    assert load_pem_private_key(found[-1], None).public_key() == cert.public_key()


def test_change_baud_over_a_pty_switches_termios_and_back_at_close(
    stub: Path, tmp_path: Path
) -> None:
    import termios

    from provision.dialects.native import NativeSession
    from provision.transport.serial import open_serial

    proc = subprocess.Popen(
        [str(stub), "--pty", "--flash", str(tmp_path / "dev.flash")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout
        pty = proc.stdout.readline().strip()
        transport = open_serial(pty, 115200)
        s = NativeSession(transport, timeout=2.0, retries=3)
        assert s.hello.rates == (115200, 230400, 460800, 921600)
        assert s.switch_baud(None) == 921600
        # The port runs at 921600 now (a pty shares one termios between its two ends).
        assert termios.tcgetattr(transport.port.fd)[4] == termios.B921600
        creds = CredentialSet.of([Slot(5, SlotType.PSK, Encoding.RAW, b"k" * 32)])
        s.write(creds)
        assert [(x.sec_tag, x.type) for x in s.list()] == [(5, SlotType.PSK)]
        s.close()
        again = NativeSession(open_serial(pty, 115200), timeout=2.0, retries=3)
        assert [(x.sec_tag, x.type) for x in again.list()] == [(5, SlotType.PSK)]
        again.close()
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_change_baud_is_a_no_op_on_stdin_stdout_and_refuses_other_rates(
    stub: Path, tmp_path: Path
) -> None:
    code, frames = exchange(
        stub,
        tmp_path / "dev.flash",
        m.Hello(1, 512),
        m.ChangeBaud(921600),
        m.Hello(1, 512),
        m.ChangeBaud(300),
    )
    assert code == 0
    hello, ok, again, refused = (f.message for f in frames)
    assert hello.features & m.Feature.BAUD and hello.rates == (115200, 230400, 460800, 921600)
    assert ok == m.Ok(int(m.MsgType.CHANGE_BAUD))
    assert isinstance(again, m.HelloInfo)  # the pipe has no rate: same bytes, same answers
    assert isinstance(refused, m.Error) and refused.code == m.ErrorCode.UNSUPPORTED
