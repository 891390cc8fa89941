"""`device write BUNDLE` sends the file as it is: options that shape a new bundle
(--device-id, --encoding) are refused beside it rather than silently ignored."""

from __future__ import annotations

import json

import pytest

from provision.errors import ExitCode


@pytest.mark.parametrize("extra", [["--device-id", "other"], ["--encoding", "pem"]])
def test_bundle_file_refuses_options_it_would_ignore(cli, tmp_path, extra) -> None:
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    assert cli(["pki", "init-ca", "--no-password", "-o", tmp_path / "ca"]).exit_code == 0
    bundle = tmp_path / "b.prvb"
    r = cli(["bundle", "pack", "--tag", "3", "--root-ca", tmp_path / "ca" / "ca.crt",
             "--device-id", "dev-1", "--out", bundle])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = cli(["device", "write", bundle, "--port", port, *extra])
    assert r.exit_code == ExitCode.USAGE
    assert "a bundle file is sent as it is" in r.output
    assert json.loads(cli(["device", "list", "--port", port, "--json"]).stdout)["slots"] == []
    assert cli(["device", "write", bundle, "--port", port]).exit_code == 0
