"""`device keygen`: outputs refused before the device makes a key; CA password options named
as in `pki issue` (the old --ca-key-password-* names still work)."""

from __future__ import annotations

import json

from provision.errors import ExitCode


def _init_encrypted_ca(cli, tmp_path):
    (tmp_path / "pw").write_text("ca-pass\n")
    r = cli(["pki", "init-ca", "-o", tmp_path / "ca", "--password-file", tmp_path / "pw"])
    assert r.exit_code == 0, r.output
    return tmp_path / "ca", tmp_path / "pw"


def _slots(cli, port):
    return json.loads(cli(["device", "list", "--port", port, "--json"]).stdout)["slots"]


def test_existing_cert_out_is_refused_before_the_device_makes_a_key(cli, tmp_path) -> None:
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    ca, pw = _init_encrypted_ca(cli, tmp_path)
    cert_out = tmp_path / "dev.crt"
    cert_out.write_text("keep me")
    r = cli(["device", "keygen", "--port", port, "--tag", "9", "-o", tmp_path / "d.csr",
             "--ca", ca, "--ca-password-file", pw, "--cert-out", cert_out])  # fmt: skip
    assert r.exit_code == ExitCode.EXISTS, r.output
    assert "dev.crt: file exists; use --force" in r.output
    assert cert_out.read_text() == "keep me" and not (tmp_path / "d.csr").exists()
    assert _slots(cli, port) == []


def test_ca_password_options_match_pki_and_keep_the_old_names(cli, tmp_path) -> None:
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    ca, pw = _init_encrypted_ca(cli, tmp_path)
    for tag, option in ((5, "--ca-password-file"), (6, "--ca-key-password-file")):
        r = cli(["device", "keygen", "--port", port, "--tag", tag, "-o", tmp_path / f"{tag}.csr",
                 "--subject", f"dev-{tag}", "--ca", ca, option, pw, "--json"])  # fmt: skip
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["installed"] == "client_cert"
    args = ["device", "keygen", "--port", port, "--tag", "7", "-o", tmp_path / "7.csr",
            "--ca", ca, "--ca-password-env", "KEYGEN_CA_PW"]  # fmt: skip
    r = cli(args, env={"KEYGEN_CA_PW": "ca-pass"})
    assert r.exit_code == 0, r.output
    assert {s["sec_tag"] for s in _slots(cli, port)} == {5, 6, 7}


def test_folder_as_output_is_refused_before_the_device_makes_a_key(cli, tmp_path) -> None:
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    folder = tmp_path / "out"
    folder.mkdir()
    for args in (["-o", folder], ["-o", tmp_path / "d.csr", "--cert-out", folder]):
        r = cli(["device", "keygen", "--port", port, "--tag", "9", *args, "--force"])
        assert r.exit_code == ExitCode.INPUT, r.output
        assert r.output.strip() == f"error: {folder}: is a directory; give a file name"
    assert _slots(cli, port) == []


def test_ca_certificate_file_without_ca_key_names_the_keygen_option(cli, tmp_path) -> None:
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    assert cli(["pki", "init-ca", "--no-password", "-o", tmp_path / "ca"]).exit_code == 0
    cert = tmp_path / "ca" / "ca.crt"
    r = cli(["device", "keygen", "--port", port, "--tag", "9", "-o", tmp_path / "d.csr",
             "--ca", cert])  # fmt: skip
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.output.strip() == (
        f"error: {cert}: a CA certificate file needs --ca-key "
        "(or give --ca a folder from `pki init-ca`)"
    )
    assert _slots(cli, port) == []
