"""`device write` without --target checks against the device's own profile (its dialect's):
what an nRF91 modem cannot hold is refused before anything is written. A CRLF PEM key is no
such thing: the at-cmng driver sends LF-only PEM, so check and driver agree that it fits."""

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


def test_at_cmng_device_takes_a_crlf_key_as_lf_pem(cli, tmp_path) -> None:
    items = _crlf_items(cli, tmp_path)
    port = f"sim://at-cmng?flash={tmp_path / 'modem.flash'}"
    r = cli(["device", "write", "--port", port, *items])
    assert r.exit_code == 0, r.output
    assert {s["slot"] for s in _slots(cli, port)} == {"root_ca", "client_cert", "client_key"}
    r = cli(["device", "verify", "--port", port, *items[:-2]])
    assert r.exit_code == 0, r.output


def test_at_cmng_device_is_checked_as_nrf91(cli, tmp_path) -> None:
    items = _crlf_items(cli, tmp_path)
    chain = tmp_path / "big.crt"
    # Three copies of the chain: over the modem's 4,094-character AT%CMNG command.
    chain.write_bytes((tmp_path / "dev" / "d1.crt").read_bytes() * 8)
    items[items.index("--client-cert") + 1] = chain
    port = f"sim://at-cmng?flash={tmp_path / 'modem.flash'}"
    r = cli(["device", "write", "--port", port, *items])
    assert r.exit_code == ExitCode.POLICY, r.output
    assert "silently drops the rest" in r.output and "nothing written" in r.output
    assert _slots(cli, port) == []
    # The same set fits a native device: its profile is another.
    native = f"sim://native?flash={tmp_path / 'dev.flash'}"
    r = cli(["device", "write", "--port", native, *items, "--force"])
    assert r.exit_code == 0, r.output


def test_native_device_keeps_the_default_profile(cli, tmp_path) -> None:
    items = _crlf_items(cli, tmp_path)
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    r = cli(["device", "write", "--port", port, *items])
    assert r.exit_code == 0, r.output
    assert len(_slots(cli, port)) == 3
