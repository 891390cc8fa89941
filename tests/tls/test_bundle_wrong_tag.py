"""`device tls-check --bundle B --tag N` with N absent from B: bad input (exit 3) listing the
bundle's client tags, not a failed handshake (exit 10, bad_credentials)."""

from __future__ import annotations

from provision.bundle.format import encode
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.errors import ExitCode


def test_tag_missing_from_the_bundle_is_bad_input(cli, pki, test_server, tmp_path) -> None:
    server, events = test_server()
    path = tmp_path / "device.prvb"
    path.write_bytes(
        encode(
            CredentialSet.of(
                [
                    Slot(42, SlotType.ROOT_CA, Encoding.PEM, pki.root),
                    Slot(42, SlotType.CLIENT_CERT, Encoding.PEM, pki.client.cert),
                    Slot(42, SlotType.CLIENT_KEY, Encoding.PEM, pki.client.key),
                ]
            )
        )
    )
    args = ["device", "tls-check", "--bundle", path, "--server", server.address]
    r = cli([*args, "--tag", "43"])
    assert r.exit_code == ExitCode.INPUT, r.output
    assert r.output.strip() == (
        f"error: {path} holds nothing in sec_tag 43 (client certificates in sec_tags: 42): "
        "give one of those as --tag"
    )
    assert events == []
    assert cli([*args, "--tag", "42"]).exit_code == 0
