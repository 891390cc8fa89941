"""`device write` without --target checks against the device's own profile: a CRLF PEM key
(kept byte for byte) is refused for an nRF91 modem (real ones answer +CME ERROR: 527), and
nothing is written; --target default or a native device take it."""

from __future__ import annotations

import json

from provision.errors import ExitCode


def _crlf_items(cli, tmp_path) -> list:
    assert cli(["pki", "init-ca", "--no-password", "-o", tmp_path / "ca"]).exit_code == 0
    r = cli(["pki", "issue", "client", "--ca", tmp_path / "ca", "--device-id", "d1",
             "-o", tmp_path / "dev"])  # fmt: skip
    assert r.exit_code == 0, r.output
    key = tmp_path / "crlf.key"
    key.write_bytes((tmp_path / "dev" / "d1.key").read_bytes().replace(b"\n", b"\r\n"))
    return ["--tag", "8", "--root-ca", tmp_path / "ca" / "ca.crt",
            "--client-cert", tmp_path / "dev" / "d1.crt", "--client-key", key,
            "--encoding", "keep"]  # fmt: skip


def _slots(cli, port) -> list:
    return json.loads(cli(["device", "list", "--port", port, "--json"]).stdout)["slots"]


def test_at_cmng_device_is_checked_as_nrf91(cli, tmp_path) -> None:
    items = _crlf_items(cli, tmp_path)
    port = f"sim://at-cmng?flash={tmp_path / 'modem.flash'}"
    r = cli(["device", "write", "--port", port, *items])
    assert r.exit_code == ExitCode.ERRORS, r.output
    assert "client_key PEM has CRLF line endings; target nrf91 needs LF only" in r.output
    assert "nothing written" in r.output
    assert _slots(cli, port) == []
    r = cli(["device", "write", "--port", port, "--target", "default", *items])
    assert r.exit_code == 0, r.output


def test_native_device_keeps_the_default_profile(cli, tmp_path) -> None:
    items = _crlf_items(cli, tmp_path)
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    r = cli(["device", "write", "--port", port, *items])
    assert r.exit_code == 0, r.output
    assert len(_slots(cli, port)) == 3
