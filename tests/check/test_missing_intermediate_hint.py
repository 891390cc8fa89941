"""A leaf issued by an intermediate, packed without it: the refusal says where the
intermediate goes (after the leaf, as pki issue's NAME.chain.pem), and that file passes."""

from __future__ import annotations

from provision.errors import ExitCode


def test_missing_intermediate_names_the_chain_file(cli, tmp_path) -> None:
    ca, out = tmp_path / "ca", tmp_path / "dev"
    assert (
        cli(["pki", "init-ca", "--no-password", "-o", ca, "--intermediate", "Issuing CA"]).exit_code
        == 0
    )
    assert (
        cli(["pki", "issue", "client", "--ca", ca, "--device-id", "d1", "-o", out]).exit_code == 0
    )
    base = ["bundle", "pack", "--tag", "1", "--root-ca", ca / "ca.crt",
            "--client-key", out / "d1.key"]  # fmt: skip
    r = cli([*base, "--client-cert", out / "d1.crt", "-o", tmp_path / "a.prvb"])
    assert r.exit_code == ExitCode.ERRORS, r.output
    assert "put it after the leaf in the client_cert file, as NAME.chain.pem" in r.output
    assert not (tmp_path / "a.prvb").exists()
    r = cli([*base, "--client-cert", out / "d1.chain.pem", "-o", tmp_path / "b.prvb"])
    assert r.exit_code == 0, r.output
