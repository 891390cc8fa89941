"""`provision pki` through the real CLI app: outputs, modes, refusals, exit codes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from provision.errors import ExitCode
from provision.pki.certs import load_certificates
from provision.pki.keys import key_is_encrypted, load_private_key

PASSWORD = "pa55-word-for-tests"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def one_line_error(result, code: ExitCode) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def ca_dir(cli, tmp_path: Path) -> Path:
    d = tmp_path / "ca"
    d.mkdir()
    r = cli(
        [
            "pki",
            "init-ca",
            "--no-password",
            "-o",
            d,
            "--cn",
            "Test Root",
            "--intermediate",
            "Test Issuing",
        ]
    )
    assert r.exit_code == 0, r.output
    return d


def test_init_ca_files_and_modes(ca_dir: Path) -> None:
    assert sorted(p.name for p in ca_dir.iterdir()) == [
        "ca.crt",
        "ca.key",
        "intermediate.crt",
        "intermediate.key",
    ]
    assert mode(ca_dir / "ca.key") == 0o600 and mode(ca_dir / "intermediate.key") == 0o600
    assert mode(ca_dir / "ca.crt") == 0o644


def test_issue_client_and_device_alias(cli, ca_dir: Path, tmp_path: Path) -> None:
    r = cli(
        ["pki", "issue", "client", "--ca", ca_dir, "--device-id", "dev-1", "-o", tmp_path, "--json"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    kinds = {Path(w["path"]).name: w["kind"] for w in doc["written"]}
    assert kinds == {
        "dev-1.key": "private_key",
        "dev-1.crt": "certificate",
        "dev-1.chain.pem": "chain",
    }
    assert "PRIVATE KEY" not in r.stdout
    chain = load_certificates((tmp_path / "dev-1.chain.pem").read_bytes(), "chain")
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=dev-1", "CN=Test Issuing"]
    r = cli(["pki", "issue", "device", "--ca", ca_dir, "--device-id", "dev-2", "-o", tmp_path])
    assert r.exit_code == 0 and (tmp_path / "dev-2.crt").exists()


def test_encrypted_key_from_password_file_and_env(cli, ca_dir: Path, tmp_path: Path) -> None:
    pw = tmp_path / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca",
            ca_dir,
            "--device-id",
            "enc-1",
            "-o",
            tmp_path,
            "--password-file",
            pw,
        ]
    )
    assert r.exit_code == 0, r.output
    data = (tmp_path / "enc-1.key").read_bytes()
    assert key_is_encrypted(data) and mode(tmp_path / "enc-1.key") == 0o600
    load_private_key(data, PASSWORD.encode(), "k")
    assert PASSWORD not in r.output
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca",
            ca_dir,
            "--device-id",
            "enc-2",
            "-o",
            tmp_path,
            "--password-env",
            "DEV_PW",
        ],
        env={"DEV_PW": PASSWORD},
    )
    assert r.exit_code == 0
    load_private_key((tmp_path / "enc-2.key").read_bytes(), PASSWORD.encode(), "k")


def test_encrypt_without_terminal_refuses_and_writes_nothing(cli, ca_dir, tmp_path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    r = cli(["pki", "issue", "client", "--ca", ca_dir, "--device-id", "d", "-o", out, "--encrypt"])
    one_line_error(r, ExitCode.INPUT)
    assert list(out.iterdir()) == []


def test_encrypted_ca_key(cli, tmp_path: Path) -> None:
    ca = tmp_path / "eca"
    ca.mkdir()
    env = {"CA_PW": PASSWORD}
    r = cli(["pki", "init-ca", "-o", ca, "--password-env", "CA_PW"], env=env)
    assert r.exit_code == 0 and key_is_encrypted((ca / "ca.key").read_bytes())
    out = tmp_path / "o"
    out.mkdir()
    r = cli(["pki", "issue", "client", "--ca", ca, "--device-id", "d1", "-o", out])
    assert "no terminal" in one_line_error(r, ExitCode.INPUT)
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca",
            ca,
            "--device-id",
            "d1",
            "-o",
            out,
            "--ca-password-env",
            "CA_PW",
        ],
        env={"CA_PW": "wrong"},
    )
    line = one_line_error(r, ExitCode.INPUT)
    assert "wrong password" in line and "ca.key" in line and "wrong" not in line.split(":")[0]
    assert list(out.iterdir()) == []
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca",
            ca,
            "--device-id",
            "d1",
            "-o",
            out,
            "--ca-password-env",
            "CA_PW",
        ],
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert not key_is_encrypted((out / "d1.key").read_bytes())


def test_refuses_overwrite_without_force(cli, ca_dir: Path, tmp_path: Path) -> None:
    args = ["pki", "issue", "server", "--ca", ca_dir, "--san", "localhost", "-o", tmp_path]
    assert cli(args).exit_code == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    line = one_line_error(cli(args), ExitCode.EXISTS)
    assert "--force" in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert cli([*args, "--force"]).exit_code == 0
    assert (tmp_path / "server.key").read_bytes() != before["server.key"]


def test_der_output(cli, ca_dir: Path, tmp_path: Path) -> None:
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca",
            ca_dir,
            "--device-id",
            "der-1",
            "-o",
            tmp_path,
            "--format",
            "der",
        ]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "der-1.crt.der").read_bytes()[0] == 0x30
    load_private_key((tmp_path / "der-1.key.der").read_bytes(), None, "k")


def test_der_ca_directory(cli, tmp_path: Path) -> None:
    r = cli(
        [
            "pki",
            "init-ca",
            "--no-password",
            "-o",
            tmp_path,
            "--format",
            "der",
            "--intermediate",
            "I",
        ]
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "o"
    out.mkdir()
    r = cli(["pki", "issue", "client", "--ca", tmp_path, "--device-id", "d", "-o", out])
    assert r.exit_code == 0, r.output


def test_ed25519_only_with_flag(cli, ca_dir: Path, tmp_path: Path) -> None:
    args = [
        "pki",
        "issue",
        "client",
        "--ca",
        ca_dir,
        "--device-id",
        "ed",
        "-o",
        tmp_path,
        "--key-type",
        "ed25519",
    ]
    assert "allow-ed25519" in one_line_error(cli(args), ExitCode.POLICY)
    assert list(tmp_path.glob("ed*")) == []
    assert cli([*args, "--allow-ed25519"]).exit_code == 0


def test_csr_then_sign(cli, ca_dir: Path, tmp_path: Path) -> None:
    r = cli(
        [
            "pki",
            "csr",
            "--cn",
            "api.example.com",
            "--san",
            "api.example.com",
            "--name",
            "server",
            "-o",
            tmp_path,
        ]
    )
    assert r.exit_code == 0, r.output
    assert mode(tmp_path / "server.key") == 0o600
    csr = tmp_path / "server.csr"
    r = cli(
        [
            "pki",
            "sign-csr",
            csr,
            "--ca",
            ca_dir,
            "--profile",
            "server",
            "--san",
            "api.example.com",
            "--out",
            tmp_path / "server.cer",
        ]
    )
    assert r.exit_code == 0, r.output
    cert = load_certificates((tmp_path / "server.cer").read_bytes(), "c")[0]
    assert cert.subject.rfc4514_string() == "CN=api.example.com"
    assert (tmp_path / "server.chain.pem").exists()


def test_sign_csr_refusals_leave_nothing(cli, ca_dir: Path, tmp_path: Path) -> None:
    assert cli(["pki", "csr", "--cn", "dev-5", "--name", "dev5", "-o", tmp_path]).exit_code == 0
    csr = tmp_path / "dev5.csr"
    before = sorted(p.name for p in tmp_path.iterdir())
    line = one_line_error(
        cli(["pki", "sign-csr", csr, "--ca", ca_dir, "--device-id", "dev-6"]), ExitCode.POLICY
    )
    assert "does not match the device id" in line
    line = one_line_error(
        cli(["pki", "sign-csr", csr, "--ca", ca_dir, "--allow-key-type", "rsa2048"]),
        ExitCode.POLICY,
    )
    assert "not allowed" in line
    garbage = tmp_path / "garbage.csr"
    garbage.write_bytes(b"\x30\x82\x00\x10junkjunkjunkjunk")
    one_line_error(cli(["pki", "sign-csr", garbage, "--ca", ca_dir]), ExitCode.INPUT)
    one_line_error(
        cli(["pki", "sign-csr", tmp_path / "missing.csr", "--ca", ca_dir]), ExitCode.INPUT
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "garbage.csr"])


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "not found"),
        (b"hello world", "not a PEM or DER"),
        (b"\x30\x82\x05\x00\x01\x02", "not a PEM or DER"),
        ("truncated", "truncated PEM"),
    ],
)
def test_bad_ca_certificate(cli, ca_dir, tmp_path, content, expect) -> None:
    bad = tmp_path / "bad.crt"
    if content == "truncated":
        content = (ca_dir / "ca.crt").read_bytes()[:300]
    if content is not None:
        bad.write_bytes(content)
    out = tmp_path / "o"
    out.mkdir()
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca-cert",
            bad,
            "--ca-key",
            ca_dir / "ca.key",
            "--device-id",
            "d",
            "-o",
            out,
        ]
    )
    line = one_line_error(r, ExitCode.INPUT)
    assert "bad.crt" in line and expect in line
    assert list(out.iterdir()) == []


def test_ca_key_mismatch_and_non_ca(cli, ca_dir: Path, tmp_path: Path) -> None:
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca-cert",
            ca_dir / "ca.crt",
            "--ca-key",
            ca_dir / "intermediate.key",
            "--device-id",
            "d",
            "-o",
            tmp_path,
        ]
    )
    assert "does not belong" in one_line_error(r, ExitCode.INPUT)
    assert (
        cli(
            ["pki", "issue", "client", "--ca", ca_dir, "--device-id", "leaf", "-o", tmp_path]
        ).exit_code
        == 0
    )
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca-cert",
            tmp_path / "leaf.crt",
            "--ca-key",
            tmp_path / "leaf.key",
            "--device-id",
            "d",
            "-o",
            tmp_path,
        ]
    )
    assert "not a CA" in one_line_error(r, ExitCode.POLICY)


def test_missing_ca_directory(cli, tmp_path: Path) -> None:
    r = cli(["pki", "issue", "client", "--ca", tmp_path / "nope", "--device-id", "d"])
    one_line_error(r, ExitCode.INPUT)


def test_bad_key_type_is_usage_error(cli, ca_dir, tmp_path) -> None:
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca",
            ca_dir,
            "--device-id",
            "d",
            "--key-type",
            "dsa",
            "-o",
            tmp_path,
        ]
    )
    assert r.exit_code == ExitCode.ERRORS and "Traceback" not in r.output
    assert list(tmp_path.glob("d.*")) == []


def test_encrypt_prompts_twice(cli, tmp_path: Path) -> None:
    env = {"PROVISION_ALLOW_PIPED_PASSWORD": "1"}
    r = cli(["pki", "init-ca", "-o", tmp_path, "--encrypt"], input=f"{PASSWORD}\n{PASSWORD}\n",
            env=env)  # fmt: skip
    assert r.exit_code == 0, r.output
    load_private_key((tmp_path / "ca.key").read_bytes(), PASSWORD.encode(), "ca.key")
    assert PASSWORD not in r.output
    out = tmp_path / "o"
    out.mkdir()
    r = cli(["pki", "init-ca", "-o", out, "--encrypt"], input=f"{PASSWORD}\nmismatch\n", env=env)
    assert r.exit_code != 0 and list(out.iterdir()) == []
