"""The simulated nRF91 modem's signed replies: %KEYGEN's COSE_Sign1, %ATTESTTOKEN, %CERTEXPIRY,
and a device identity (UUID, IMEI, attestation key) of its own.

Nordic's own parser (nrfcloud-utils `modem_credentials_parser`) reads what the simulator says;
its tests' real modem outputs pin the format we build."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from cryptography import x509

from provision.dialects import nrf_attestation as att
from provision.pki import es256
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.sim.at_cmng import (
    ATTEST_KEY_TYPE,
    IDENTITY_TAG,
    AtCmngModem,
    AtCmngOptions,
)
from provision.sim.serve import build_runner

mcp = pytest.importorskip(
    "nrfcloud_utils.modem_credentials_parser", reason="nrfcloud-utils not installed"
)

UUID = "50363154-3931-44f0-8022-121b6401627d"
# A real modem's %KEYGEN reply and %ATTESTTOKEN from nrfcloud-utils' tests
# (tests/test_modem_credentials_parser.py): the format we build must parse like these.
REAL_KEYGEN_COSE = (
    "0oRDoQEmoQRBIVhL2dn3hQlQUDYxVDkxRPCAIhIbZAFifUERWCBwKj1W8FsvclMdZQgl4gBB4unZMYw0toU6uQZuXHLo"
    "DFAbhyLuHetYFWbiyxNZsnzSWEDUiTl7wwFt0hEsCiEQsxj-hCtpBk8Za8UXfdAycpx2faCOPJIrkfmiSS8-Y6_2tTAo"
    "AMN1BiWiTOimY1wZE3Ud"
)
REAL_ATTESTTOKEN = (
    "2dn3hQFQUDYxVDkxRPCAIhIbZAFifQNQGv86y_GmR2SiY0wmRsHGVFDT791_BPH8YOWFiyCHND1q."
    "0oRDoQEmoQRBIfZYQGuXwJliinHc6xDPruiyjsaXyXZbZVpUuOhHG9YS8L05VuglCcJhMN4EUhWVGpaHgNnHHno6ahi-"
    "d5tOeZmAcNY"
)


def offline_modem(**options) -> AtCmngModem:
    modem = AtCmngModem(options=AtCmngOptions(**options))
    modem.execute("AT+CMEE=1")
    modem.execute("AT+CFUN=4")
    return modem


def quoted(lines: list[str]) -> str:
    (line,) = lines
    return line.split('"')[1]


def identity_public_key(modem: AtCmngModem) -> bytes:
    return es256.public_pem(modem.store.entries()[(IDENTITY_TAG, ATTEST_KEY_TYPE)])


def test_our_parser_reads_a_real_modems_keygen_cose_and_attestation_token():
    keygen = att.parse_keygen_attestation(REAL_KEYGEN_COSE)
    assert keygen is not None
    assert (keygen.message_type, keygen.device_uuid, keygen.sec_tag) == (att.MSG_CSR, UUID, 17)
    assert (keygen.cose.alg, keygen.cose.kid_name) == (att.ALG_ES256, "identity_key")
    assert len(keygen.cose.signature) == 64
    token = att.parse_attest_token(REAL_ATTESTTOKEN)
    assert (token.message_type, token.device_uuid) == (att.MSG_IDENTITY, UUID)
    assert token.device_type_name == "NRF9160 SIAA" and token.cose.payload is None


def test_keygen_cose_parses_with_nordics_parser_and_binds_the_csr():
    modem = offline_modem(uuid=UUID)
    lines, final = modem.execute('AT%KEYGEN=1235,2,0,"O=Acme"')
    assert final == "OK"
    reply = quoted(lines)
    csr_pem, _, dev_uuid, sec_tag = mcp.parse_keygen_output(reply)
    assert (dev_uuid, sec_tag) == (UUID, "1235")
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.subject.rfc4514_string() == f"CN={UUID},O=Acme"
    body, cose = reply.split(".")
    keygen = att.parse_keygen_attestation(cose)
    assert keygen.matches(att.b64url_decode(body, "body"))
    assert not keygen.matches(b"another CSR")
    key = identity_public_key(modem)
    assert es256.verify(key, keygen.cose.to_be_signed(), keygen.cose.signature)


def test_keygen_public_key_reply_is_a_public_key_message():
    modem = offline_modem()
    reply = quoted(modem.execute("AT%KEYGEN=9,2,1")[0])
    body, cose = reply.split(".")
    keygen = att.parse_keygen_attestation(cose)
    assert keygen.message_type == att.MSG_PUBLIC_KEY
    assert keygen.body_sha256 == hashlib.sha256(att.b64url_decode(body, "body")).digest()


def test_attestation_token_parses_with_nordics_parser_and_is_signed_by_the_identity_key():
    modem = offline_modem(uuid=UUID, model="nRF9151-LACA")
    lines, final = modem.execute("AT%ATTESTTOKEN")
    assert final == "OK" and lines[0].startswith('%ATTESTTOKEN: "')
    text = quoted(lines)
    assert mcp.get_device_uuid(text) == UUID
    mcp.parse_attesttoken_output(text)  # raises on what it cannot read
    token = att.parse_attest_token(text)
    assert token.device_type_name == "nRF9151 LACA"
    assert es256.verify(
        identity_public_key(modem), token.cose.to_be_signed(token.message), token.cose.signature
    )


def test_attestation_token_carries_the_challenge_and_refuses_a_malformed_one():
    modem = offline_modem()
    challenge = "90115c20ac3f381b520b43c76bd5d99c"
    token = att.parse_attest_token(quoted(modem.execute(f'AT%ATTESTTOKEN="{challenge}"')[0]))
    assert token.nonce.hex() == challenge
    assert modem.execute('AT%ATTESTTOKEN="abc"') == ([], "+CME ERROR: 50")


def test_attestation_key_is_kept_in_flash_hidden_and_listed_as_the_identity_public_key(tmp_path):
    flash = str(tmp_path / "modem.flash")
    first = build_runner("at-cmng", {"flash": flash, "baud": "0"}).device
    first.execute("AT+CFUN=4")
    key = identity_public_key_after_token(first)
    again = build_runner("at-cmng", {"flash": flash, "baud": "0"}).device
    assert identity_public_key_after_token(again) == key
    listed = again.execute("AT%CMNG=1,4294967294")[0]
    digest = hashlib.sha256(key).hexdigest().upper()
    assert f'%CMNG: 4294967294,6,"{digest}"' in listed
    assert all(f",{ATTEST_KEY_TYPE}," not in line for line in again.execute("AT%CMNG=1")[0])
    assert again.execute(f"AT%CMNG=3,{IDENTITY_TAG},{ATTEST_KEY_TYPE}")[1] != "OK"


def identity_public_key_after_token(modem: AtCmngModem) -> bytes:
    token = att.parse_attest_token(quoted(modem.execute("AT%ATTESTTOKEN")[0]))
    key = identity_public_key(modem)
    assert es256.verify(key, token.cose.to_be_signed(token.message), token.cose.signature)
    return key


def test_the_attestation_key_does_not_count_against_credential_capacity():
    modem = offline_modem(capacity=300)
    modem.execute("AT%ATTESTTOKEN")
    assert modem.execute('AT%CMNG=0,5,4,"' + "i" * 290 + '"') == ([], "OK")


def test_each_simulated_modem_has_its_own_uuid_and_imei_from_seed_or_uid():
    def identity(options: dict[str, str]) -> tuple[str, str]:
        modem = build_runner("at-cmng", {"baud": "0", **options}).device
        return modem.options.uuid, modem.options.imei

    seeds = {identity({"seed": str(seed)}) for seed in range(5)}
    assert len(seeds) == 5
    assert identity({"seed": "3"}) == identity({"seed": "3"})
    assert identity({"uid": "0a0b"}) != identity({"uid": "0a0c"})
    for device_uuid, imei in seeds:
        assert uuid.UUID(device_uuid).version == 4 and len(imei) == 15 and imei.isdigit()
    modem = build_runner("at-cmng", {"baud": "0", "uuid": UUID}).device
    modem.execute("AT+CFUN=4")
    csr_pem, *_ = mcp.parse_keygen_output(quoted(modem.execute("AT%KEYGEN=3,2,0")[0]))
    assert UUID in x509.load_pem_x509_csr(csr_pem).subject.rfc4514_string()


def test_certexpiry_reports_serial_and_validity_of_a_stored_certificate():
    modem = offline_modem()
    root = create_root_ca("Expiry Root")
    pem = cert_pem(root.cert).decode()
    assert modem.execute(f'AT%CMNG=0,7,0,"{pem}"')[1] == "OK"
    (line,), final = modem.execute("AT%CERTEXPIRY=7,0")
    serial, not_before, not_after = line.removeprefix("%CERTEXPIRY: ").split(",")
    assert final == "OK" and int(serial, 16) == root.cert.serial_number
    assert not_before == root.cert.not_valid_before_utc.strftime("%Y%m%d%H%M%SZ")
    assert not_after == root.cert.not_valid_after_utc.strftime("%Y%m%d%H%M%SZ")
    assert modem.execute("AT%CERTEXPIRY=8,0") == ([], "+CME ERROR: 513")
    assert modem.execute("AT%CERTEXPIRY=7,2") == ([], "+CME ERROR: 50")
