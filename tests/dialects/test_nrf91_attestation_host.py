"""The host side of the nRF91's signed replies: `device info` shows the UUID and the decoded
%ATTESTTOKEN, `device keygen` checks the %KEYGEN attestation against its CSR, and our driver
keeps writing LF-only PEM whatever the modem accepts (its verify digest follows)."""

from __future__ import annotations

import json

import pytest
from dialect_helpers import LoopTransport

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.device import Device
from provision.dialects.at_cmng import AtCmngSession
from provision.dialects.nrf_attestation import b64url, parse_keygen_attestation
from provision.errors import DeviceError
from provision.pki.device_keygen import generate_key_and_csr
from provision.sim.at_cmng import AtCmngModem, AtCmngOptions

UUID = "50363154-3931-44f0-8022-121b6401627d"


def session_for(modem: AtCmngModem) -> AtCmngSession:
    return AtCmngSession(LoopTransport(modem), timeout=0.05, retries=1)


@pytest.mark.parametrize("kind", ["at-cmng", "at-shell"])
def test_device_info_shows_the_uuid_and_decoded_attestation_token(cli, kind):
    port = f"sim://{kind}?uuid={UUID}&cmd_buff_size=4096"
    result = cli(["device", "info", "--port", port, "--dialect", kind, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["uuid"] == UUID
    token = info["attestation"]
    assert (token["device_uuid"], token["device_type"]) == (UUID, "nRF9151 LACA")
    assert token["kid"] == "identity_key" and "not checked" in token["signature"]
    table = cli(["device", "info", "--port", port, "--dialect", kind])
    assert UUID in table.output and "attestation device_type" in table.output


def test_device_info_of_a_device_without_attestation_has_no_uuid(cli):
    result = cli(["device", "info", "--port", "sim://native", "--json"])
    assert result.exit_code == 0 and "attestation" not in json.loads(result.output)


def test_device_keygen_reports_the_checked_attestation(cli, tmp_path):
    out = tmp_path / "dev.csr"
    port = f"sim://at-cmng?uuid={UUID}"
    result = cli(["device", "keygen", "--port", port, "--tag", "12", "--out", out, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["device_uuid"] == UUID
    assert report["attestation"]["csr_digest"] == "matches"
    assert report["attestation"]["sec_tag"] == 12
    table = cli(["device", "keygen", "--port", port, "--tag", "13", "--out", tmp_path / "b.csr"])
    assert f"device UUID {UUID}" in table.output and "digest matches" in table.output


class SwappedCsrModem(AtCmngModem):
    """A reply whose CSR is not the one the attestation was signed over (a corrupted or
    spliced reply): the host must not take that CSR."""

    def _keygen_cmd(self, args: str):  # type: ignore[no-untyped-def]
        lines, final = super()._keygen_cmd(args)
        if final != "OK":
            return lines, final
        other = generate_key_and_csr(None, "someone-else")[1]
        cose = lines[0].split('"')[1].split(".")[1]
        return [f'%KEYGEN: "{b64url(other)}.{cose}"'], final


def test_keygen_refuses_a_csr_its_attestation_does_not_cover():
    session = session_for(SwappedCsrModem())
    with pytest.raises(DeviceError, match="does not match the CSR") as err:
        session.keygen(5)
    assert err.value.code == "at.keygen_attestation"


def test_keygen_keeps_the_checked_attestation_for_the_line():
    session = session_for(AtCmngModem(options=AtCmngOptions(uuid=UUID)))
    assert session.last_attestation is None
    csr = session.keygen(7, "dev-7")
    found = session.last_attestation
    assert (
        found is not None
        and found.matches(csr)
        and (found.device_uuid, found.sec_tag)
        == (
            UUID,
            7,
        )
    )


def test_a_keygen_reply_without_an_attestation_payload_is_still_accepted():
    # Older firmware: an empty COSE payload. The CSR is taken; no UUID is claimed.
    class Unsigned(AtCmngModem):
        def _keygen_cmd(self, args: str):  # type: ignore[no-untyped-def]
            lines, final = super()._keygen_cmd(args)
            body = lines[0].split('"')[1].split(".")[0]
            return [f'%KEYGEN: "{body}.0oRDoQEmoPZA"'], final

    session = session_for(Unsigned())
    assert session.keygen(3)[:1] == b"\x30"
    assert session.last_attestation is None
    assert parse_keygen_attestation("0oRDoQEmoPZA") is None


def test_driver_sends_lf_only_pem_even_to_a_modem_that_takes_crlf(device_set):
    modem = AtCmngModem()  # stores CR LF as sent: production firmware
    session = session_for(modem)
    slot = device_set.get(42, SlotType.ROOT_CA)
    crlf = Slot(42, SlotType.ROOT_CA, Encoding.PEM, slot.data.replace(b"\n", b"\r\n"))
    credentials = CredentialSet.of([crlf])
    session.write(credentials)
    stored = modem.store.entries()[(42, 0)]
    assert b"\r" not in stored and stored == slot.data
    assert Device(session, "loop").verify(credentials).ok
