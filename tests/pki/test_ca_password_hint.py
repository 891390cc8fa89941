"""An encrypted CA key without a password source, and no terminal: the error names the CA
password options (--password-file would encrypt the new key instead)."""

from __future__ import annotations

from provision.errors import ExitCode


def test_missing_ca_password_names_the_ca_options(cli, tmp_path) -> None:
    (tmp_path / "pw").write_text("ca-pass\n")
    r = cli(["pki", "init-ca", "-o", tmp_path / "ca", "--password-file", tmp_path / "pw"])
    assert r.exit_code == 0, r.output
    for args in (
        ["pki", "issue", "client", "--ca", tmp_path / "ca", "--device-id", "d1"],
        ["pki", "issue", "server", "--ca", tmp_path / "ca", "--san", "a.example"],
    ):
        r = cli([*args, "-o", tmp_path / "out"])
        assert r.exit_code == ExitCode.INPUT, r.output
        assert "CA key password needed, but there is no terminal" in r.output
        assert "use --ca-password-file or --ca-password-env" in r.output
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_new_key_password_still_names_the_plain_options(cli, tmp_path) -> None:
    r = cli(["pki", "init-ca", "-o", tmp_path / "ca", "--encrypt"])
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "use --password-file or --password-env" in r.output


def test_init_ca_encrypts_by_default_and_no_password_opts_out(cli, tmp_path) -> None:
    # No source and no terminal: refused, nothing written, and the opt-out is named.
    r = cli(["pki", "init-ca", "-o", tmp_path / "refused"])
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "or --no-password to leave it unencrypted" in r.output
    assert not (tmp_path / "refused").exists()

    r = cli(["pki", "init-ca", "-o", tmp_path / "enc", "--password-env", "CA_PW"],
            env={"CA_PW": "ca-pass"})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "enc" / "ca.key").read_bytes()

    r = cli(["pki", "init-ca", "-o", tmp_path / "plain", "--no-password"])
    assert r.exit_code == 0, r.output
    assert b"-----BEGIN PRIVATE KEY" in (tmp_path / "plain" / "ca.key").read_bytes()


def test_no_password_with_a_password_source_is_a_bad_command_line(cli, tmp_path) -> None:
    r = cli(["pki", "init-ca", "-o", tmp_path / "x", "--no-password", "--password-env", "PW"])
    assert r.exit_code == 2 and "--no-password" in r.output
