"""`provision check` through the real CLI app: exit codes 0/1/2/3, table and --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provision.errors import ExitCode
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_der, cert_pem
from provision.pki.keys import generate_key, serialize_private_key

PW = "check-cli-password"


def _with_version(der: bytes, version: int) -> bytes:
    """The certificate with its explicit version field ([0] INTEGER 2) set to `version`."""
    at = der.index(bytes([0xA0, 0x03, 0x02, 0x01, 0x02]))
    return der[: at + 4] + bytes([version]) + der[at + 5 :]


@pytest.fixture(scope="module")
def files(tmp_path_factory, pki, device) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("check")
    key, cert = device
    now = datetime.now(UTC)
    old_ca = create_root_ca("Old", now=now - timedelta(days=400))
    old_key, old_cert = old_ca.issue_client("old-dev", days=30, now=now - timedelta(days=100))
    soon_key, soon_cert = pki.root.issue_client("soon-dev", days=7)
    content = {
        "root.crt": cert_pem(pki.root.cert),
        "root.der": cert_der(pki.root.cert),
        "inter.crt": cert_pem(pki.intermediate.cert),
        "dev.crt": cert_pem(cert),
        "dev.chain.pem": cert_pem(cert) + cert_pem(pki.intermediate.cert),
        "dev.key": serialize_private_key(key),
        "dev.enc.key": serialize_private_key(key, password=PW.encode()),
        "other.key": serialize_private_key(generate_key()),
        "old-root.crt": cert_pem(old_ca.cert),
        "old.crt": cert_pem(old_cert),
        "old.key": serialize_private_key(old_key),
        "soon.crt": cert_pem(soon_cert),
        "soon.key": serialize_private_key(soon_key),
        "pw.txt": PW.encode() + b"\n",
        "wrong-pw.txt": b"nope\n",
        "text.crt": b"this is not a certificate\n",
        "garbage.der": b"\x30\x82\x02\x00" + bytes(range(200)),
        "truncated.crt": cert_pem(pki.root.cert)[:250],
        "big-root.crt": cert_pem(pki.root.cert) * 8,
        # X.509 version 10 (v1..v3 are 0..2): cryptography's InvalidVersion is no ValueError
        "bad-version.der": _with_version(cert_der(pki.root.cert), 9),
    }
    for name, data in content.items():
        (d / name).write_bytes(data)
    return {name: d / name for name in content}


def run(cli, *args):
    return cli(["check", *map(str, args)])


def assert_clean_error(result, code: ExitCode, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def codes_of(result) -> set[str]:
    return {f["code"] for f in json.loads(result.stdout)["findings"]}


def test_clean(cli, files) -> None:
    r = run(
        cli,
        "--root",
        files["root.crt"],
        "--cert",
        files["dev.chain.pem"],
        "--key",
        files["dev.key"],
        "--strict",
    )
    assert r.exit_code == 0, r.output
    assert "no findings" in r.stdout


def test_separate_chain_file_and_der_root(cli, files) -> None:
    r = run(
        cli,
        "--root",
        files["root.der"],
        "--cert",
        files["dev.crt"],
        "--chain",
        files["inter.crt"],
        "--key",
        files["dev.key"],
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["findings"] == []


def test_encrypted_key_with_password_file(cli, files) -> None:
    args = [
        "--root",
        files["root.crt"],
        "--cert",
        files["dev.chain.pem"],
        "--key",
        files["dev.enc.key"],
        "--json",
    ]
    assert run(cli, *args, "--password-file", files["pw.txt"]).exit_code == 0
    r = run(cli, *args, "--password-file", files["wrong-pw.txt"])
    assert r.exit_code == ExitCode.ERRORS and codes_of(r) == {"key.password_wrong"}
    assert "nope" not in r.stdout and PW not in r.stdout
    assert "dev.enc.key" in json.loads(r.stdout)["findings"][0]["message"]
    r = run(cli, *args)
    assert r.exit_code == ExitCode.ERRORS and codes_of(r) == {"key.password_missing"}


def test_key_mismatch(cli, files) -> None:
    r = run(
        cli,
        "--root",
        files["root.crt"],
        "--cert",
        files["dev.chain.pem"],
        "--key",
        files["other.key"],
    )
    assert r.exit_code == ExitCode.ERRORS
    assert "key.mismatch" in r.stdout and "error" in r.stdout


def test_expired(cli, files) -> None:
    r = run(
        cli,
        "--root",
        files["old-root.crt"],
        "--cert",
        files["old.crt"],
        "--key",
        files["old.key"],
        "--json",
    )
    assert r.exit_code == ExitCode.ERRORS and codes_of(r) == {"cert.expired"}


def test_expires_soon_strict(cli, files) -> None:
    args = ["--root", files["root.crt"], "--cert", files["soon.crt"], "--key", files["soon.key"]]
    r = run(cli, *args)
    assert r.exit_code == 0 and "cert.expires_soon" in r.stdout
    assert run(cli, *args, "--strict").exit_code == ExitCode.WARNINGS
    assert run(cli, *args, "--strict", "--expiry-days", "3").exit_code == 0


def test_non_ca_root(cli, files) -> None:
    r = run(cli, "--root", files["dev.crt"], "--json")
    assert r.exit_code == ExitCode.ERRORS
    assert {"root.not_ca", "root.not_self_signed"} <= codes_of(r)


def test_oversized_item_for_target(cli, files) -> None:
    args = ["--root", files["big-root.crt"], "--json"]
    assert run(cli, *args).exit_code == 0
    r = run(cli, *args, "--target", "nrf91")
    assert r.exit_code == ExitCode.ERRORS and codes_of(r) == {"size.too_large"}
    r = run(cli, *args, "--target", "zephyr")
    assert r.exit_code == ExitCode.ERRORS and codes_of(r) == {"size.too_large"}


def test_server_cert_option(cli, files, pki, tmp_path) -> None:
    _, server = pki.intermediate.issue_server(["mqtt.example.com"])
    chain = tmp_path / "server.pem"
    chain.write_bytes(cert_pem(server) + cert_pem(pki.intermediate.cert))
    base = ["--root", files["root.crt"], "--server-cert", chain, "--json"]
    assert run(cli, *base, "--server-hostname", "mqtt.example.com").exit_code == 0
    r = run(cli, *base, "--server-hostname", "other.example.com")
    assert r.exit_code == ExitCode.ERRORS and codes_of(r) == {"server.hostname_mismatch"}


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("missing.crt", "not found"),
        ("text.crt", "not a PEM or DER"),
        ("truncated.crt", "truncated PEM"),
        ("garbage.der", "not a PEM or DER"),
        ("bad-version.der", "not a PEM or DER"),
    ],
)
def test_bad_input_files(cli, files, name: str, expect: str) -> None:
    path = files["root.crt"].parent / name
    r = run(cli, "--root", path)
    assert_clean_error(r, ExitCode.INPUT, name, expect)
    r = run(cli, "--root", files["root.crt"], "--cert", path)
    assert_clean_error(r, ExitCode.INPUT, name, expect)


def test_missing_key_file(cli, files) -> None:
    r = run(
        cli,
        "--root",
        files["root.crt"],
        "--cert",
        files["dev.crt"],
        "--key",
        files["root.crt"].parent / "nokey.pem",
    )
    assert_clean_error(r, ExitCode.INPUT, "nokey.pem", "not found")


def test_not_a_key_is_a_finding(cli, files) -> None:
    r = run(
        cli,
        "--root",
        files["root.crt"],
        "--cert",
        files["dev.chain.pem"],
        "--key",
        files["text.crt"],
        "--json",
    )
    assert r.exit_code == ExitCode.ERRORS and codes_of(r) == {"key.invalid"}


def test_unknown_target(cli, files) -> None:
    r = run(cli, "--root", files["root.crt"], "--target", "nrf19")
    assert_clean_error(r, ExitCode.INPUT, "unknown target")


def test_nothing_to_check_is_usage_error(cli) -> None:
    r = run(cli)
    assert r.exit_code == ExitCode.ERRORS and "Traceback" not in r.output


def test_key_password_prompt(cli, files) -> None:
    args = ["check", "--root", files["root.crt"], "--cert", files["dev.chain.pem"], "--key",
            files["dev.enc.key"]]  # fmt: skip
    env = {"PROVISION_ALLOW_PIPED_PASSWORD": "1"}
    r = cli(args, input=PW + "\n", env=env)
    assert r.exit_code == 0, r.output
    assert PW not in r.output
    r = cli(args, input="wrong\n", env=env)
    assert r.exit_code == ExitCode.ERRORS and "key.password_wrong" in r.stdout
