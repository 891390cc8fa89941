"""`provision device …` and `provision sim` through the real CLI against simulated devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provision.errors import ExitCode


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> dict[str, Path]:
    from provision.pki.authority import create_root_ca
    from provision.pki.certs import cert_pem
    from provision.pki.keys import serialize_private_key

    d = tmp_path_factory.mktemp("creds")
    ca = create_root_ca("CLI Test Root")
    key, cert = ca.issue_client("dev-0001")
    _other_key, other_cert = ca.issue_client("dev-0002")
    files = {
        "ca": (cert_pem(ca.cert), 0o644),
        "ca_key": (serialize_private_key(ca.key), 0o600),
        "cert": (cert_pem(cert), 0o644),
        "key": (serialize_private_key(key), 0o600),
        "other_cert": (cert_pem(other_cert), 0o644),
    }
    out = {}
    for name, (data, mode) in files.items():
        path = d / f"{name}.pem"
        path.write_bytes(data)
        path.chmod(mode)
        out[name] = path
    out["key_bytes"] = serialize_private_key(key)  # type: ignore[assignment]
    return out


@pytest.fixture
def port(tmp_path) -> str:
    return f"sim://native?flash={tmp_path / 'dev.flash'}"


def items(creds, cert="cert") -> list:
    return ["--tag", "42", "--root-ca", creds["ca"], "--client-cert", creds[cert],
            "--client-key", creds["key"]]  # fmt: skip


def test_info_json(cli, port) -> None:
    r = cli(["device", "info", "--port", port, "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["dialect"] == "native" and len(info["device_id"]) == 16
    assert info["details"]["window"] >= 1 and "keygen" in info["details"]["features"]


def test_write_list_verify_persist(cli, port, creds) -> None:
    r = cli(["device", "write", "--port", port, "--json", *items(creds)])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["ok"] and result["verified"] and len(result["slots"]) == 3
    key_hex = creds["key_bytes"].hex()
    assert key_hex not in r.output and b"PRIVATE KEY" not in r.output.encode()
    # A second process run finds the same flash.
    r = cli(["device", "list", "--port", port, "--json"])
    assert r.exit_code == 0, r.output
    slots = json.loads(r.stdout)["slots"]
    assert [(s["sec_tag"], s["slot"]) for s in slots] == [
        (42, "root_ca"),
        (42, "client_cert"),
        (42, "client_key"),
    ]
    assert slots[1]["subject"] == "CN=dev-0001" and slots[1]["not_after"]
    assert "subject" not in slots[2]
    r = cli(["device", "verify", "--port", port, *items(creds)])
    assert r.exit_code == 0, r.output
    r = cli(["device", "verify", "--port", port, *items(creds, "other_cert")])
    assert r.exit_code == ExitCode.ERRORS
    assert "client_cert: digest differs" in r.output


def test_write_a_bundle_file(cli, port, creds, tmp_path) -> None:
    bundle = tmp_path / "b.bin"
    r = cli(["bundle", "pack", "-o", bundle, *items(creds)])
    assert r.exit_code == 0, r.output
    r = cli(["device", "write", str(bundle), "--port", port])
    assert r.exit_code == 0, r.output
    assert "device digests verified" in r.stdout
    r = cli(["device", "verify", str(bundle), "--port", port, "--json"])
    assert json.loads(r.stdout)["ok"] is True
    # A key password beside a bundle file would be ignored: refused instead.
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    r = cli(["device", "write", str(bundle), "--port", port, "--key-password-file", pw])
    assert r.exit_code == ExitCode.USAGE
    assert r.output.strip() == (
        "error: --key-password-file/-env go with item options, not a bundle or --spec"
    )


def test_preflight_errors_refuse_unless_force(cli, port, creds) -> None:
    # The client cert of another key: the check reports a key mismatch.
    r = cli(["device", "write", "--port", port, *items(creds, "other_cert")])
    assert r.exit_code == ExitCode.ERRORS, r.output
    assert r.output.startswith("error: check failed") and "nothing written" in r.output
    assert json.loads(cli(["device", "list", "--port", port, "--json"]).stdout)["slots"] == []
    r = cli(["device", "write", "--port", port, "--force", *items(creds, "other_cert")])
    assert r.exit_code == 0, r.output


def test_delete_guard_tag_and_missing(cli, port, creds) -> None:
    assert cli(["device", "write", "--port", port, *items(creds)]).exit_code == 0
    r = cli(["device", "delete", "--port", port, "--all"])
    assert r.exit_code == ExitCode.USAGE and "--yes" in r.output
    r = cli(["device", "delete", "--port", port, "--tag", "42", "--slot", "root_ca"])
    assert r.exit_code == 0, r.output
    slots = json.loads(cli(["device", "list", "--port", port, "--json"]).stdout)["slots"]
    assert {s["slot"] for s in slots} == {"client_cert", "client_key"}
    r = cli(["device", "delete", "--port", port, "--tag", "7"])
    assert r.exit_code == ExitCode.DEVICE
    assert (
        r.output.strip()
        == "error: DELETE: no such slot or sec_tag on the device (nothing to delete)"
    )
    assert cli(["device", "delete", "--port", port, "--all", "--yes"]).exit_code == 0
    assert json.loads(cli(["device", "list", "--port", port, "--json"]).stdout)["slots"] == []


def test_keygen_writes_csr_and_installs_signed_cert(cli, port, creds, tmp_path) -> None:
    from provision.pki.csr import load_csr

    csr_path = tmp_path / "dev.csr"
    r = cli(["device", "keygen", "--port", port, "--tag", "9", "--out", csr_path,
             "--subject", "dev-9", "--ca", creds["ca"], "--ca-key", creds["ca_key"],
             "--cert-out", tmp_path / "dev.crt", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["installed"] == "client_cert"
    loaded = load_csr(csr_path.read_bytes(), "csr")
    assert loaded.csr.is_signature_valid
    slots = json.loads(cli(["device", "list", "--port", port, "--json"]).stdout)["slots"]
    assert [(s["sec_tag"], s["slot"]) for s in slots] == [(9, "client_cert"), (9, "client_key")]
    assert slots[0]["subject"] == "CN=dev-9"
    # The CSR file is not overwritten without --force (exit 5, as everywhere).
    r = cli(["device", "keygen", "--port", port, "--tag", "9", "--out", csr_path])
    assert r.exit_code == ExitCode.EXISTS and "use --force" in r.output


def test_keygen_signs_with_a_ca_folder_from_init_ca(cli, port, tmp_path) -> None:
    assert (
        cli(
            ["pki", "init-ca", "--no-password", "--out-dir", tmp_path / "ca", "--cn", "Folder CA"]
        ).exit_code
        == 0
    )
    r = cli(["device", "keygen", "--port", port, "--tag", "5", "--out", tmp_path / "d.csr",
             "--subject", "dev-5", "--ca", tmp_path / "ca", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["installed"] == "client_cert"
    r = cli(["device", "keygen", "--port", port, "--tag", "6", "--out", tmp_path / "e.csr",
             "--ca-key", tmp_path / "ca" / "ca.key"])  # fmt: skip
    assert r.exit_code == ExitCode.USAGE and "--ca-key needs --ca" in r.output


def test_link_errors_are_one_line(cli, creds) -> None:
    r = cli(["device", "info", "--port", "sim://native?silent_after=0", "--dialect", "native",
             "--timeout", "0.2", "--retries", "1"])  # fmt: skip
    assert r.exit_code == ExitCode.LINK
    assert r.output.count("\n") == 1 and r.output.startswith("error: no answer to HELLO")
    r = cli(["device", "info", "--port", "/dev/ttyNOPE0", "--timeout", "0.2"])
    assert r.exit_code == ExitCode.INPUT and "cannot open port" in r.output
    r = cli(["device", "info", "--port", "sim://native", "--dialect", "klingon"])
    assert r.exit_code == ExitCode.USAGE and "'klingon' is not one of" in r.output
    r = cli(["device", "info", "--port", "sim://native?flip=2"])
    assert r.exit_code == ExitCode.INPUT and "probability" in r.output


def test_write_over_a_faulty_line_still_verifies(cli, creds, tmp_path) -> None:
    port = f"sim://native?flash={tmp_path / 'f.flash'}&flip=0.0005&drop=0.0005&seed=3"
    r = cli(["device", "write", "--port", port, "--json", *items(creds)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["verified"] is True


def test_ports_json(cli) -> None:
    r = cli(["device", "ports", "--json"])
    assert r.exit_code == 0 and isinstance(json.loads(r.stdout)["ports"], list)


def test_sim_needs_pty_or_tcp(cli) -> None:
    r = cli(["sim"])
    assert r.exit_code == ExitCode.USAGE and "--pty or --tcp" in r.output


def _start(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("provision")), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    line = proc.stdout.readline().strip()  # type: ignore[union-attr]
    return proc, line


@pytest.mark.parametrize("mode", [["--tcp", "0"], ["--pty"]])
def test_sim_serves_over_tcp_and_pty(cli, creds, tmp_path, mode) -> None:
    proc, where = _start(["sim", *mode, "--flash", str(tmp_path / "s.flash")])
    try:
        assert where.startswith("socket://127.0.0.1:") or where.startswith("/dev/pts/"), where
        start = time.monotonic()
        r = cli(["device", "write", "--port", where, "--json", *items(creds)])
        assert r.exit_code == 0, r.output
        assert time.monotonic() - start < 30
    finally:
        proc.terminate()
        proc.wait(10)


def test_sim_json_names_the_port(cli, creds, tmp_path) -> None:
    proc, line = _start(["sim", "--tcp", "0", "--json", "--dialect", "at-cmng"])
    try:
        ready = json.loads(line)
        assert ready["event"] == "ready" and ready["dialect"] == "at-cmng"
        r = cli(["device", "info", "--port", ready["port"], "--dialect", "at-cmng", "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["dialect"] == "at-cmng"
    finally:
        proc.terminate()
        proc.wait(10)


def test_write_psk_items_like_bundle_pack(cli, port, tmp_path) -> None:
    psk = tmp_path / "psk.hex"
    psk.write_text("00112233445566778899aabbccddeeff\n")
    r = cli(["device", "write", "--port", port, "--tag", "5", "--psk-hex-file", psk,
             "--psk-identity", "dev-5", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [s["slot"] for s in json.loads(r.stdout)["slots"]] == ["psk", "psk_identity"]
    assert "00112233445566778899aabbccddeeff" not in r.output
    r = cli(["device", "write", "--port", port])
    assert r.exit_code == ExitCode.USAGE and "give one of" in r.output


def test_a_write_cut_short_by_ctrl_c_leaves_the_line_clear_for_the_next_command(
    cli, creds, tmp_path
) -> None:
    # At 2400 baud a native write queues seconds of DATA frames; cut short, they still
    # reach the device after the host has gone, and the next command's probes met a device
    # busy reading them ("no known dialect answered"). The interrupted host lets the line
    # clear before it exits.
    import signal

    sim, port = _start(["sim", "--pty", "--baud", "2400", "--flash", str(tmp_path / "s.flash")])
    provision = str(Path(sys.executable).with_name("provision"))
    try:
        write = subprocess.Popen(
            [
                provision,
                "device",
                "write",
                "--port",
                port,
                "--baud",
                "2400",
                "--trace",
                "--dialect",
                "native",
                *map(str, items(creds)),
            ],
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert write.stderr is not None
        for line in write.stderr:  # the trace: Ctrl-C once the first DATA frame is sent
            if " tx " in line and (" DATA " in line or " DATA_LEAN " in line):
                break
        write.send_signal(signal.SIGINT)
        _, err = write.communicate(timeout=60)
        assert write.returncode == ExitCode.INTERRUPTED, err
        assert "letting the line clear" in err and "Traceback" not in err
        r = cli(["device", "info", "--port", port, "--baud", "2400", "--timeout", "4", "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["dialect"] == "native"
    finally:
        sim.terminate()
        sim.wait(10)


def test_write_names_on_stderr_the_strays_it_deleted(cli, creds, monkeypatch) -> None:
    # What the sweep after a write reports (a garbled AT header stored a copy under tag 4,
    # tests/dialects) reaches the user: the CLI loads the words for it only then.
    import dataclasses

    from provision.bundle.model import SlotType
    from provision.device import Device
    from provision.dialects.at_cmng import AtCmngSession

    write = AtCmngSession.write
    # The sweep runs after a write that sent something twice (a garbled send may have
    # stored it elsewhere).
    monkeypatch.setattr(
        AtCmngSession,
        "write",
        lambda self, *a, **k: dataclasses.replace(write(self, *a, **k), resent=True),
    )
    monkeypatch.setattr(Device, "_delete_strays", lambda self, *a: ((4, SlotType.CLIENT_KEY),))
    r = cli(["device", "write", "--port", "sim://at-cmng", "--dialect", "at-cmng", *items(creds)])
    assert r.exit_code == 0, r.output
    assert (
        "warning: deleted a copy of this set's content the line had stored under sec_tag 4 "
        "client_key" in r.stderr
    )
