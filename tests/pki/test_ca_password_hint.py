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
