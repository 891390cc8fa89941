"""The README's exit-code table is the single source: every ExitCode is a row, every row is an
ExitCode, and every row is produced by some test — named in PRODUCERS below, whose body must
assert that code (a renamed or deleted test, or one that stopped asserting it, fails here)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from provision.cli.main import ProvisionGroup, app
from provision.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]

# code → a test that makes `provision` exit with it ("path::function").
PRODUCERS: dict[ExitCode, str] = {
    ExitCode.OK: "tests/core/test_cli_errors.py::test_version",
    ExitCode.WARNINGS: "tests/check/test_cli_check.py::test_expires_soon_strict",
    ExitCode.ERRORS: "tests/pki/test_cli_pki.py::test_bad_key_type_is_usage_error",
    ExitCode.INPUT: "tests/hostile/test_file_inputs.py::"
    "test_non_regular_input_file_is_refused_in_one_line",
    ExitCode.BUNDLE: "tests/bundle/test_bundle_cli.py::test_signed_pack_and_verify",
    ExitCode.EXISTS: "tests/pki/test_cli_pki.py::test_refuses_overwrite_without_force",
    ExitCode.POLICY: "tests/pki/test_cli_pki.py::test_ed25519_only_with_flag",
    ExitCode.DEVICE: "tests/device/test_cli.py::test_delete_guard_tag_and_missing",
    ExitCode.LINK: "tests/hostile/test_input_classes.py::"
    "test_noise_without_frames_points_at_the_baud_rate",
    ExitCode.REGISTRY: "tests/registry/test_cli_registry.py::test_verify_ok_then_broken",
    ExitCode.TLS: "tests/tls/test_tls_cli.py::test_failed_check_exits_tls_with_a_named_failure",
    ExitCode.HSM: "tests/core/test_exit_code_table.py::test_unusable_token_module_is_exit_11",
    ExitCode.INTERNAL: "tests/core/test_cli_errors.py::"
    "test_unexpected_exception_is_one_line_without_traceback",
    ExitCode.INTERRUPTED: "tests/core/test_exit_code_table.py::test_interrupt_is_exit_130",
}


def readme_table() -> dict[int, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {
        int(m.group(1)): m.group(2).strip()
        for m in re.finditer(r"^\| (\d+) \| (.+) \|$", section, re.MULTILINE)
    }


def test_every_exit_code_is_a_readme_row_and_every_row_an_exit_code() -> None:
    rows = readme_table()
    assert set(rows) == {int(code) for code in ExitCode}


def test_every_row_is_produced_by_a_named_test() -> None:
    assert set(PRODUCERS) == set(ExitCode), "a code without a test that produces it"
    for code, where in PRODUCERS.items():
        path, name = where.split("::")
        tree = ast.parse((ROOT / path).read_text())
        found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
        assert found, f"{where} does not exist (exit {int(code)})"
        body = ast.get_source_segment((ROOT / path).read_text(), found[0]) or ""
        aliases = [c.name for c in ExitCode if c.value == code.value]
        spelled = [f"ExitCode.{a}" for a in aliases] + [f"== {int(code)}", f"exit_code={int(code)}"]
        assert any(s in body for s in spelled), f"{where} does not assert exit {int(code)}"


def test_unusable_token_module_is_exit_11(tmp_path: Path) -> None:
    from provision.pki.authority import create_root_ca
    from provision.pki.certs import cert_pem

    (tmp_path / "ca.crt").write_bytes(cert_pem(create_root_ca("T").cert))
    config = tmp_path / "station.toml"
    config.write_text(
        'station = "st"\nports = ["jig://hsm-none"]\nregistry = "r.sqlite"\n[ca]\n'
        'cert = "ca.crt"\nkey = "pkcs11:token=t;object=k?module-path=/nonexistent/p11.so"\n'
    )
    result = CliRunner().invoke(app, ["line", "run", str(config), "-n", "1"])
    assert result.exit_code == ExitCode.HSM, result.output
    assert result.stderr.startswith("error: PKCS#11 module not found")
    assert not (tmp_path / "r.sqlite").exists()


def test_interrupt_is_exit_130() -> None:
    sub = typer.Typer(cls=ProvisionGroup)

    @sub.command()
    def wait() -> None:
        raise KeyboardInterrupt

    @sub.command()
    def other() -> None:  # two commands: typer keeps the group (one would be the app)
        pass

    result = CliRunner().invoke(sub, ["wait"])
    assert result.exit_code == ExitCode.INTERRUPTED
    assert result.stderr == "error: interrupted\n"
