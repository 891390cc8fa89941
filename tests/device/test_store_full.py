"""A device whose credential store has no room says so the same way in every dialect:
StoreFull, exit 6, code device.store_full."""

from __future__ import annotations

import json

import pytest

import provision.device
from provision.bundle.format import decode
from provision.errors import ExitCode, StoreFull
from provision.link import messages as m
from provision.link.host import device_error


def test_native_no_space_is_store_full() -> None:
    err = device_error(m.Error(m.ErrorCode.NO_SPACE, m.MsgType.COMMIT, ""))
    assert isinstance(err, StoreFull) and err.code == "device.store_full"


@pytest.fixture
def items(cli, tmp_path) -> list:
    assert cli(["pki", "init-ca", "--no-password", "-o", tmp_path / "ca"]).exit_code == 0
    r = cli(["pki", "issue", "client", "--ca", tmp_path / "ca", "--device-id", "d1",
             "-o", tmp_path / "dev"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return ["--tag", "8", "--root-ca", tmp_path / "ca" / "ca.crt",
            "--client-cert", tmp_path / "dev" / "d1.crt",
            "--client-key", tmp_path / "dev" / "d1.key", "--json"]  # fmt: skip


@pytest.mark.parametrize(
    ("dialect", "option"), [("at-cmng", "capacity=1200"), ("zephyr-shell", "max_credentials=2")]
)
def test_a_full_store_is_the_same_error_in_every_text_dialect(
    cli, tmp_path, items, dialect, option
) -> None:
    port = f"sim://{dialect}?{option}&flash={tmp_path / 'dev.flash'}"
    r = cli(["device", "write", "--port", port, "--dialect", dialect, *items])
    assert r.exit_code == ExitCode.POLICY, r.output
    # One line on stderr; with --json the same failure is a JSON object on stdout.
    assert r.stderr.startswith("error:") and r.stderr.count("\n") == 1, r.output
    assert json.loads(r.stdout)["error"]["code"] == "device.store_full", r.stdout
    bundle = tmp_path / "set.prvb"
    r = cli(["bundle", "pack", *items[:-1], "-o", bundle])
    assert r.exit_code == 0, r.output
    credentials = decode(bundle.read_bytes()).credentials
    with provision.device.open(port, dialect=dialect) as dev, pytest.raises(StoreFull) as full:
        dev.provision(credentials)
    assert full.value.code == "device.store_full"
