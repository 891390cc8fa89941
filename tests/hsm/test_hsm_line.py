"""A factory line whose issuing CA key lives in SoftHSM2 (`[ca] key = "pkcs11:…"`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from provision.line import Line
from provision.line.config import config_from_dict
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.hsm import load_hsm_key
from provision.registry import open_registry


@pytest.mark.softhsm
def test_line_issues_with_the_token_key(hsm_uri: str, tmp_path: Path) -> None:
    ca = create_root_ca("Line CA (HSM)", key=load_hsm_key(hsm_uri))
    (tmp_path / "ca.crt").write_bytes(cert_pem(ca.cert))
    cfg = config_from_dict(
        {
            "station": "st-hsm",
            "registry": "reg.sqlite",
            "ports": ["jig://hsm-a", "jig://hsm-b"],
            "ca": {"cert": "ca.crt", "key": hsm_uri},
        },
        tmp_path,
    )
    outcomes: list = []
    summary = Line(cfg, operator="tester", limit=6, emit=outcomes.append).run()
    assert summary.counts == {"ok": 6}
    with open_registry(cfg.registry) as reg:
        for o in outcomes:
            cert = x509.load_pem_x509_certificate(reg.latest(o.device_id).cert_pem.encode())
            cert.verify_directly_issued_by(ca.cert)
    assert not list(tmp_path.glob("*.key"))


@pytest.mark.softhsm
def test_line_refuses_a_ca_certificate_of_another_key(hsm_uri: str, tmp_path: Path) -> None:
    from provision.errors import InputError

    other = create_root_ca("Some other CA")
    (tmp_path / "ca.crt").write_bytes(cert_pem(other.cert))
    cfg = config_from_dict(
        {"station": "st-hsm", "ports": ["jig://x"], "ca": {"cert": "ca.crt", "key": hsm_uri}},
        tmp_path,
    )
    with pytest.raises(InputError, match="does not belong"):
        Line(cfg, operator="tester", limit=1)


@pytest.mark.softhsm
def test_line_run_cli_with_ca_key_uri(cli, hsm_uri: str, tmp_path: Path) -> None:
    import json

    ca = create_root_ca("Line CA (HSM)", key=load_hsm_key(hsm_uri))
    (tmp_path / "ca.crt").write_bytes(cert_pem(ca.cert))
    (tmp_path / "station.toml").write_text(
        'station = "st-cli"\nregistry = "reg.sqlite"\n[ca]\ncert = "ca.crt"\nkey = "unused.key"\n'
    )
    config = tmp_path / "station.toml"
    result = cli(["line", "run", config, "--ca-key", hsm_uri, "-p", "jig://hc", "-n", "2"])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["status"] for x in result.stdout.splitlines()] == ["ok", "ok"]
    bad = hsm_uri.split("?")[0] + "?pin-value=1234"
    result = cli(["line", "run", config, "--ca-key", bad, "-p", "jig://hc", "-n", "1"])
    assert result.exit_code == 3 and "pin-value" in result.stderr
