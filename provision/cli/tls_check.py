"""`provision device tls-check`: prove the credentials with a real mutual-TLS handshake."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from provision.bundle.format import decode
from provision.bundle.model import SlotType
from provision.cli.common import console, print_json
from provision.errors import InputError, TLSCheckError
from provision.pki.files import read_input
from provision.tls.client import DEFAULT_TIMEOUT
from provision.tls.device_check import LINK_MARGIN, check_on_device, check_with_bundle
from provision.tls.material import TLS_VERSIONS
from provision.tls.report import HandshakeReport
from provision.tls.wire import parse_server


def _only_tag(tags: set[int], where: str) -> int:
    if len(tags) == 1:
        return next(iter(tags))
    if not tags:
        raise InputError(f"{where} holds no client_cert in any sec_tag")
    listed = ", ".join(str(t) for t in sorted(tags))
    raise InputError(f"{where} has client certificates in several sec_tags ({listed}): give --tag")


def tls_check(
    server: str = typer.Option(..., "--server", help="The TLS server, HOST:PORT."),
    tag: int | None = typer.Option(
        None, "--tag", min=0, help="sec_tag to use (default: the only one with a client_cert)."
    ),
    bundle: Path | None = typer.Option(
        None, "--bundle", help="Run the handshake on the host with this bundle's slots instead."
    ),
    port: str | None = typer.Option(
        None, "--port", envvar="PROVISION_PORT", help="Device URL (serial port or sim://…)."
    ),
    dialect: str = typer.Option("auto", "--dialect", help="native, at-cmng, zephyr-shell, auto."),
    baud: int | None = typer.Option(None, "--baud", help="Serial speed."),
    tls: str | None = typer.Option(None, "--tls", help="Only this TLS version: 1.2 or 1.3."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", min=0.1, help="Seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Mutual-TLS handshake to --server with only the slots of one sec_tag: on the device
    (simulators), or on the host with --bundle. Exit 10 if it does not succeed."""
    if tls is not None and tls not in TLS_VERSIONS:
        raise typer.BadParameter(f"{tls!r} (valid: {', '.join(TLS_VERSIONS)})", param_hint="--tls")
    host, tcp_port = parse_server(server)
    if bundle is not None:
        if tag is None:
            creds = decode(read_input(bundle, "bundle")).credentials
            tag = _only_tag(
                {s.sec_tag for s in creds if s.type is SlotType.CLIENT_CERT}, str(bundle)
            )
        where = f"host, with the slots of {bundle}"
        report = check_with_bundle(bundle, host, tcp_port, tag, tls_version=tls, timeout=timeout)
    else:
        if port is None:
            raise InputError("give --port URL (the device) or --bundle FILE (host-side check)")
        import provision.device

        with provision.device.open(
            port, dialect=dialect, baud=baud, timeout=timeout + LINK_MARGIN
        ) as device:
            if tag is None:
                tag = _only_tag(
                    {s.sec_tag for s in device.list() if s.type is SlotType.CLIENT_CERT}, port
                )
            where = f"device {port} ({device.dialect}), with its own slots"
            report = check_on_device(device, host, tcp_port, tag, tls_version=tls, timeout=timeout)
    render(report, where, json_out)
    if not report.ok:
        raise TLSCheckError(report.summary(), code=f"tls.{report.failure.label}")


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def render(report: HandshakeReport, where: str, json_out: bool) -> None:
    if json_out:
        print_json({**report.to_dict(), "where": where})
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("server", report.server)
    table.add_row("sec_tag", str(report.sec_tag))
    table.add_row("handshake by", where)
    table.add_row("TLS version", report.version or "-")
    table.add_row("cipher", report.cipher or "-")
    chain = " <- ".join(report.server_chain) if report.server_chain else "-"
    table.add_row("server chain verified", f"{_yes_no(report.server_verified)}: {chain}")
    accepted = _yes_no(report.client_accepted)
    if report.accepted_as:
        accepted += f", as {report.accepted_as}"
    if report.evidence:
        accepted += f" ({report.evidence})"
    table.add_row("server accepted our cert", accepted)
    if not report.ok:
        table.add_row("failure", f"{report.failure.label}: {report.detail}")
    console.print(table, markup=False, highlight=False)
    if report.ok:
        console.print("mutual TLS handshake accepted", markup=False, style="bold green")
