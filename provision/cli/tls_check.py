"""`provision device tls-check`: prove the credentials with a real mutual-TLS handshake."""

from __future__ import annotations

from pathlib import Path

import typer

from provision.bundle.model import MAX_SEC_TAG
from provision.cli import common
from provision.cli.common import PORT_HELP, dialect_option, print_json
from provision.errors import TLSCheckError
from provision.tls.report import DEFAULT_TIMEOUT, HandshakeReport


def tls_check(
    server: str = typer.Option(..., "--server", help="The TLS server, HOST:PORT."),
    tag: int | None = typer.Option(
        None,
        "--tag",
        min=0,
        max=MAX_SEC_TAG,
        help="sec_tag to use (default: the only one with a client_cert).",
    ),
    bundle: Path | None = typer.Option(
        None,
        "--bundle",
        help="Run the handshake on the host with this bundle's slots (with --port: only if "
        "the device cannot run it itself).",
    ),
    port: str | None = typer.Option(
        None,
        "--port",
        "-p",
        envvar="PROVISION_PORT",
        help=PORT_HELP + " Without it: the handshake runs on the host with --bundle.",
    ),
    dialect: str = dialect_option("auto", auto=True),
    baud: int | None = typer.Option(None, "--baud", help="Serial speed."),
    tls: str | None = typer.Option(None, "--tls", help="Only this TLS version: 1.2 or 1.3."),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT, "--timeout", min=0.1, help="Seconds the handshake may take."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Mutual-TLS handshake to --server with only the slots of one sec_tag: on the device
    (simulators), or on the host with --bundle. Exit 10 if it does not succeed."""
    # Loaded here: `provision device --help` need not load the TLS stack and cryptography.
    from provision.tls.device_check import run_check
    from provision.tls.material import TLS_VERSIONS
    from provision.tls.wire import parse_server

    if tls is not None and tls not in TLS_VERSIONS:
        raise typer.BadParameter(f"{tls!r} (valid: {', '.join(TLS_VERSIONS)})", param_hint="--tls")
    host, tcp_port = parse_server(server)
    report, where = run_check(
        host,
        tcp_port,
        sec_tag=tag,
        bundle=bundle,
        url=port,
        dialect=dialect,
        baud=baud,
        tls_version=tls,
        timeout=timeout,
    )
    render(report, where, json_out)
    if not report.ok:
        raise TLSCheckError(report.summary(), code=f"tls.{report.failure.label}")


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def render(report: HandshakeReport, where: str, json_out: bool) -> None:
    if json_out:
        print_json({**report.to_dict(), "where": where})
        return
    rows = common.table(show_header=False)
    rows.add_column(style="bold")
    rows.add_column(overflow="fold")
    rows.add_row("server", report.server)
    rows.add_row("sec_tag", str(report.sec_tag))
    rows.add_row("handshake by", where)
    rows.add_row("TLS version", report.version or "-")
    rows.add_row("cipher", report.cipher or "-")
    chain = " <- ".join(report.server_chain) if report.server_chain else "-"
    rows.add_row("server chain verified", f"{_yes_no(report.server_verified)}: {chain}")
    accepted = _yes_no(report.client_accepted)
    if report.accepted_as:
        accepted += f", as {report.accepted_as}"
    if report.evidence:
        accepted += f" ({report.evidence})"
    rows.add_row("server accepted our cert", accepted)
    if not report.ok:
        rows.add_row("failure", f"{report.failure.label}: {report.detail}")
    common.console.print(rows, markup=False, highlight=False)
    if report.ok:
        common.console.print("mutual TLS handshake accepted", markup=False, style="bold green")
