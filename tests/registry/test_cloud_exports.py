"""Cloud onboarding exports in the clouds' own formats: nRF Cloud's onboarding CSV (what
nrfcloud-utils' `save_onboarding_csv` writes) and AWS IoT's RegisterCertificateWithoutCA
request bodies, one per line. Golden files in tests/vectors/exports/."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from cryptography import x509
from registry_helpers import entry

from provision.registry import open_registry
from provision.registry.export import write_export

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
FIXTURES = VECTORS / "fixtures"
GOLDEN = {"nrfcloud": VECTORS / "exports" / "nrfcloud-onboard.csv",
          "aws-iot": VECTORS / "exports" / "aws-iot.jsonl"}  # fmt: skip
UUID = "50363154-3931-44f0-8022-121b6401627d"


def golden_registry(url: str) -> None:
    """Two provisioned devices with the fixture certificates (CN dev-0001 and the other root)."""
    with open_registry(url) as reg:
        reg.record(
            entry("352656100367872", serial=1, cert_pem=(FIXTURES / "device.pem").read_text(),
                  device_uuid=UUID)
        )  # fmt: skip
        other = (FIXTURES / "other-root.pem").read_text()
        reg.record(entry("352656100367880", serial=2, cert_pem=other))


def exported(url: str, fmt: str) -> str:
    out = io.StringIO()
    with open_registry(url) as reg:
        write_export(reg.iter_provisioned(), fmt, out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", sorted(GOLDEN))
def test_export_matches_its_golden_file(tmp_path, fmt):
    url = str(tmp_path / "registry.sqlite")
    golden_registry(url)
    text = exported(url, fmt)
    if os.environ.get("PROVISION_RECORD_EXPORTS") == "1":
        GOLDEN[fmt].write_bytes(text.encode())
    assert text == GOLDEN[fmt].read_bytes().decode()


def test_nrfcloud_export_is_what_nrfcloud_utils_writes(tmp_path):
    cli_helpers = pytest.importorskip("nrfcloud_utils.cli_helpers", reason="nrfcloud-utils")
    url = str(tmp_path / "registry.sqlite")
    golden_registry(url)
    theirs = tmp_path / "onboard.csv"
    with open_registry(url) as reg:
        for i, rec in enumerate(reg.iter_provisioned()):
            cn = x509.load_pem_x509_certificate(rec.cert_pem.encode()).subject.rfc4514_string()
            # nrfcloud-utils' installer defaults: no subtype, no tags, "APP|MODEM".
            cli_helpers.save_onboarding_csv(
                str(theirs), i > 0, False, cn.removeprefix("CN="), "", "", "APP|MODEM",
                rec.cert_pem,
            )  # fmt: skip
    assert exported(url, "nrfcloud") == theirs.read_text()


def test_aws_iot_lines_are_register_certificate_without_ca_bodies(tmp_path):
    url = str(tmp_path / "registry.sqlite")
    golden_registry(url)
    lines = exported(url, "aws-iot").splitlines()
    assert len(lines) == 2
    for line in lines:
        body = json.loads(line)
        # The API's request body: certificatePem (1..65536 chars) and an optional status.
        assert set(body) == {"certificatePem", "status"} and body["status"] == "ACTIVE"
        assert 1 <= len(body["certificatePem"]) <= 65536
        x509.load_pem_x509_certificate(body["certificatePem"].encode())


@pytest.mark.parametrize("fmt", ["nrfcloud", "aws-iot"])
def test_cloud_export_via_cli_writes_the_same_bytes(cli, tmp_path, fmt):
    url = str(tmp_path / "registry.sqlite")
    golden_registry(url)
    out = tmp_path / f"export.{fmt}"
    result = cli(["registry", "export", "--registry", url, "--format", fmt, "--out", out])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().decode() == GOLDEN[fmt].read_bytes().decode()
