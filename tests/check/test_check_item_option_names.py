"""`provision check` takes the item option names of `bundle pack`/`device write` as well
(--root-ca, --client-cert, --client-key, --key-password-file/-env): the same files, the
same findings."""

from __future__ import annotations

import json


def test_bundle_option_names_give_the_same_check(cli, tmp_path) -> None:
    (tmp_path / "pw").write_text("dev-pass\n")
    assert cli(["pki", "init-ca", "--no-password", "-o", tmp_path / "ca"]).exit_code == 0
    r = cli(["pki", "issue", "client", "--ca", tmp_path / "ca", "--device-id", "d1",
             "-o", tmp_path / "dev", "--password-file", tmp_path / "pw"])  # fmt: skip
    assert r.exit_code == 0, r.output
    root, cert, key = (
        tmp_path / "ca" / "ca.crt",
        tmp_path / "dev" / "d1.crt",
        tmp_path / "dev" / "d1.key",
    )
    short = ["--root", root, "--cert", cert, "--key", key, "--password-file", tmp_path / "pw"]
    long = ["--root-ca", root, "--client-cert", cert, "--client-key", key,
            "--key-password-file", tmp_path / "pw"]  # fmt: skip
    results = [cli(["check", *names, "--target", "nrf91", "--json"]) for names in (short, long)]
    assert [r.exit_code for r in results] == [0, 0], [r.output for r in results]
    assert json.loads(results[0].stdout) == json.loads(results[1].stdout)
    r = cli(["check", "--root-ca", root, "--client-cert", cert, "--client-key", key,
             "--key-password-env", "CHECK_PW", "--json"], env={"CHECK_PW": "wrong"})  # fmt: skip
    assert r.exit_code == 2
    assert [f["code"] for f in json.loads(r.stdout)["findings"]] == ["key.password_wrong"]
