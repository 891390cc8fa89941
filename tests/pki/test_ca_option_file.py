"""`pki issue --ca FILE` says that --ca is the init-ca folder and names --ca-cert/--ca-key
(it said 'CA directory not found' about a file that exists)."""

from __future__ import annotations

from provision.errors import ExitCode


def test_ca_given_a_certificate_file_names_the_file_options(cli, tmp_path) -> None:
    assert cli(["pki", "init-ca", "--no-password", "-o", tmp_path / "ca"]).exit_code == 0
    cert = tmp_path / "ca" / "ca.crt"
    for args in (
        ["pki", "issue", "client", "--device-id", "d1"],
        ["pki", "issue", "server", "--san", "a.example"],
    ):
        r = cli([*args, "--ca", cert, "-o", tmp_path / "out"])
        assert r.exit_code == ExitCode.INPUT, r.output
        assert r.output.strip() == (
            f"error: {cert}: --ca takes the folder from `pki init-ca`; "
            "for certificate and key files give --ca-cert and --ca-key"
        )
    r = cli(["pki", "issue", "client", "--device-id", "d1", "--ca-cert", cert,
             "--ca-key", tmp_path / "ca" / "ca.key", "-o", tmp_path / "out"])  # fmt: skip
    assert r.exit_code == 0, r.output
