"""`provision registry show|verify|export` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_helpers import entry, raw_sql

from provision.errors import ExitCode
from provision.registry import Result, open_registry
from provision.registry.backends import redact_url


@pytest.fixture
def filled(registry_url: str) -> str:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-1", result=Result.FAILED))
        reg.record(entry("uid-1", serial=reg.allocate_serial()))
        reg.record(entry("uid-2", serial=reg.allocate_serial()))
    return registry_url


def test_show_json_lists_history(cli, filled: str) -> None:
    result = cli(["registry", "show", "uid-1", "--registry", filled, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["result"] for r in doc["records"]] == ["failed", "ok"]
    assert doc["records"][0]["error_code"] == "link.timeout"


def test_show_table_and_unknown_device(cli, filled: str) -> None:
    result = cli(["registry", "show", "uid-2", "--registry", filled])
    assert result.exit_code == 0
    assert "uid-2" in result.stdout and "certificate sha256" in result.stdout
    # Not 9 (registry unreachable): a script must tell the two apart.
    result = cli(["registry", "show", "nobody", "--registry", filled])
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.strip() == f"error: device nobody: no records in {redact_url(filled)}"


def test_verify_ok_then_broken(cli, filled: str) -> None:
    result = cli(["registry", "verify", "--registry", filled])
    assert result.exit_code == 0
    assert "intact: 3 rows" in result.stdout
    raw_sql(filled, "DELETE FROM records WHERE seq = 2")
    result = cli(["registry", "verify", "--registry", filled, "--json"])
    assert result.exit_code == ExitCode.REGISTRY
    doc = json.loads(result.stdout)
    assert not doc["ok"] and any("row 2 deleted" in p for p in doc["problems"])


def test_export_to_file_refuses_overwrite(cli, filled: str, tmp_path: Path) -> None:
    out = tmp_path / "devices.json"
    result = cli(["registry", "export", "--format", "json", "-o", out, "--registry", filled])
    assert result.exit_code == 0, result.output
    assert [r["device_id"] for r in json.loads(out.read_text())] == ["uid-1", "uid-2"]
    result = cli(["registry", "export", "--format", "csv", "-o", out, "--registry", filled])
    assert result.exit_code == ExitCode.EXISTS
    assert out.read_text().startswith("[")
    result = cli(["registry", "export", "--format", "xml", "--registry", filled])
    assert result.exit_code == ExitCode.INPUT
    assert "unknown export format" in result.stderr


def test_missing_registry_file_is_one_line_error(cli, tmp_path: Path) -> None:
    result = cli(["registry", "verify", "--registry", tmp_path / "none.sqlite"])
    assert result.exit_code == ExitCode.REGISTRY
    assert result.stderr.count("\n") == 1 and "no registry here" in result.stderr
    assert not (tmp_path / "none.sqlite").exists()


def test_show_has_the_proof(cli, registry_url: str) -> None:
    proof = '{"failure":"client_cert_rejected","result":"failed","sec_tag":42,"server":"h:1"}'
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-1", result=Result.FAILED, proof=proof))
    result = cli(["registry", "show", "uid-1", "--registry", registry_url])
    assert result.exit_code == 0
    assert "mTLS proof         failed: client_cert_rejected (h:1, sec_tag 42)" in result.stdout
    result = cli(["registry", "show", "uid-1", "--registry", registry_url, "--json"])
    assert json.loads(result.stdout)["records"][0]["proof"]["failure"] == "client_cert_rejected"
