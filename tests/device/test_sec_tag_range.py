"""A --tag outside 0..2^31-1 is a bad command line (exit 2) for every device command; it
was a construct build error reported as a link failure (exit 8)."""

from __future__ import annotations

import json

import pytest

from provision.errors import ExitCode


@pytest.mark.parametrize("tag", ["99999999999", "2147483648", "-1"])
@pytest.mark.parametrize(
    "command",
    [
        ["device", "delete"],
        ["device", "keygen", "-o", "never.csr"],
        ["device", "write", "--psk-identity", "x"],
        ["device", "verify", "--root-ca", "never.pem"],
        ["device", "tls-check", "--server", "127.0.0.1:1"],
    ],
)
def test_out_of_range_tag_is_a_bad_command_line(cli, tmp_path, command, tag) -> None:
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    r = cli([*command, "--port", port, "--tag", tag])
    assert r.exit_code == ExitCode.ERRORS, r.output
    assert "--tag" in r.output and "Traceback" not in r.output
    assert json.loads(cli(["device", "list", "--port", port, "--json"]).stdout)["slots"] == []
