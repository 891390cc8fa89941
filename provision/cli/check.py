"""`provision check`: pre-flight check of credential files before they go to a device."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from provision.cli.common import (
    PASSWORD_ENV_HELP,
    PASSWORD_FILE_HELP,
    print_json,
    resolve_password,
)
from provision.dialects import target_names

if TYPE_CHECKING:
    from rich.table import Table

    from provision.check import Finding

app = typer.Typer(no_args_is_help=True)


def _can_prompt() -> bool:
    return sys.stdin.isatty() or os.environ.get("PROVISION_ALLOW_PIPED_PASSWORD") == "1"


# Every command that checks a set (check, bundle pack|verify, device write) takes --target.
TARGET_HELP = f"Device profile to check against: {', '.join(target_names())}."
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def findings_table(findings: Sequence[Finding], title: str | None = None) -> Table:
    """Findings as `check` and `bundle pack|verify` print them (messages quote certificate
    fields, so every cell is plain text, never markup)."""
    from rich.text import Text

    from provision.cli.common import safe_text, table

    rows = table("severity", "code", "sec_tag", "slot", "message", title=title)
    for f in findings:
        rows.add_row(
            Text(f.severity.value, style=_STYLE[f.severity.value]),
            safe_text(f.code),
            "" if f.sec_tag is None else str(f.sec_tag),
            safe_text(f.slot or ""),
            safe_text(f.message),
        )
    return rows


@app.command("check")
def check(
    # The second names are those `bundle pack` and `device write` use for the same items.
    root: list[Path] = typer.Option(
        [], "--root", "--root-ca", help="Root CA certificate (repeat)."
    ),
    cert: Path | None = typer.Option(
        None, "--cert", "--client-cert", help="Client certificate (+ chain, PEM)."
    ),
    chain: Path | None = typer.Option(None, "--chain", help="Intermediate CA certificate(s)."),
    key: Path | None = typer.Option(
        None, "--key", "--client-key", help="Client private key (PEM or DER)."
    ),
    password_file: Path | None = typer.Option(
        None, "--password-file", "--key-password-file", help="Key password: " + PASSWORD_FILE_HELP
    ),
    password_env: str | None = typer.Option(
        None, "--password-env", "--key-password-env", help="Key password: " + PASSWORD_ENV_HELP
    ),
    target: str = typer.Option("default", "--target", help=TARGET_HELP),
    expiry_days: int = typer.Option(
        30, "--expiry-days", min=0, help="Warn when a certificate expires within this many days."
    ),
    server_cert: Path | None = typer.Option(
        None, "--server-cert", help="Server certificate or chain the device will be shown."
    ),
    server_hostname: str | None = typer.Option(
        None, "--server-hostname", help="Name the device connects to (default: first SAN)."
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings."),
    json_out: bool = typer.Option(False, "--json", help="Findings as JSON."),
) -> None:
    """Check roots, client certificate, key and sizes. Exit 0 clean, 1 warnings (--strict),
    2 errors; 3 when an input file is missing or not a certificate."""
    from provision.check import check_files, exit_code_for
    from provision.cli.common import console
    from provision.pki.files import read_input
    from provision.pki.keys import key_is_encrypted

    if not root and cert is None:
        raise typer.BadParameter("give at least --root or --cert", param_hint="--root/--cert")
    password = None
    if key is not None:
        encrypted = key_is_encrypted(read_input(key, "private key"))
        password = resolve_password(
            password_file=password_file,
            password_env=password_env,
            # Without a terminal the check reports key.password_missing instead of failing.
            prompt="Key password" if encrypted and _can_prompt() else None,
        )
    report = check_files(
        roots=root,
        client_cert=cert,
        client_key=key,
        chain=chain,
        key_password=password,
        target=target,
        expiry_warning_days=expiry_days,
        server_cert=server_cert,
        server_hostname=server_hostname,
    )
    code = exit_code_for(report.findings, strict=strict)
    if json_out:
        print_json(
            {
                "target": report.target,
                "findings": [f.to_json() for f in report.findings],
                "errors": len(report.errors),
                "warnings": len(report.warnings),
                "exit_code": code,
            }
        )
    elif not report.findings:
        console.print(f"ok: no findings (target {report.target})")
    else:
        console.print(findings_table(report.findings))
        console.print(
            f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) "
            f"(target {report.target})"
        )
    raise typer.Exit(code)
