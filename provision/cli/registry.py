"""`provision registry`: show a device, verify the hash chain, export for cloud onboarding."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from provision.cli import common
from provision.cli.common import print_json
from provision.errors import CheckFailed, InputError, RegistryError
from provision.registry.export import FORMATS, export_to

app = typer.Typer(no_args_is_help=True, help="The device registry: show, export, verify.")

DEFAULT_REGISTRY = "provision-registry.sqlite"
REGISTRY_HELP = "Registry: a SQLite path, sqlite:///path or postgresql://… URL."


def _registry_option() -> str:
    return typer.Option(
        DEFAULT_REGISTRY, "--registry", "-r", envvar="PROVISION_REGISTRY", help=REGISTRY_HELP
    )


def _proof_text(proof: dict[str, object]) -> str:
    where = f"{proof.get('server')}, sec_tag {proof.get('sec_tag')}"
    if proof.get("result") == "accepted":
        return f"accepted ({proof.get('version')}, {where})"
    return f"{proof.get('result')}: {proof.get('failure')} ({where})"


@app.command()
def show(
    device_id: str = typer.Argument(..., help="Device id (UID or IMEI)."),
    registry: str = _registry_option(),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    pem: bool = typer.Option(False, "--pem", help="Print the latest certificate PEM as well."),
) -> None:
    """Every registry record of one device, oldest first."""
    from provision.registry import open_registry
    from provision.registry.backends import redact_url

    with open_registry(registry, read_only=True) as reg:
        history = reg.history(device_id)
    if not history:
        # Exit 3, not 9: a script must tell "never provisioned" from "registry unreachable".
        raise InputError(
            f"device {device_id}: no records in {redact_url(registry)}",
            code="registry.unknown_device",
        )
    # A certificate replaced when the board was provisioned again: which later row did it.
    replaced_by = {serial: r.seq for r in history for serial in r.supersedes}
    if json_out:
        records = [
            {**r.public_dict(), "superseded_by": replaced_by.get(r.cert_serial or "")}
            for r in history
        ]
        print_json({"device_id": device_id, "records": records})
        return
    rows = common.table(
        "row",
        "result",
        "finished (UTC)",
        "station",
        "operator",
        "serial",
        "sec_tags",
        title=f"device {device_id}",
    )
    # The result may carry a code and "(superseded by row N)": free text, folded, not cut.
    rows.columns[1].no_wrap = False
    rows.columns[1].min_width = len("ok (superseded")
    for r in history:
        rows.add_row(
            str(r.seq),
            r.result.value
            + (f" ({r.error_code})" if r.error_code else "")
            + (
                f" (superseded by row {replaced_by[r.cert_serial]})"
                if r.cert_serial in replaced_by
                else ""
            ),
            # To the second: the full ISO time is in --json.
            r.finished_at[:19].replace("T", " "),
            r.station,
            r.operator,
            r.cert_serial or "-",
            " ".join(str(t) for t in r.sec_tags) or "-",
        )
    common.console.print(rows)
    last = history[-1]
    if last.cert_sha256:
        common.console.print(f"certificate sha256 {last.cert_sha256}")
    if last.root_sha256:
        common.console.print(f"root CA sha256     {last.root_sha256}")
    if last.proof:
        common.console.print(
            f"mTLS proof         {_proof_text(json.loads(last.proof))}", markup=False
        )
    if pem and last.cert_pem:
        common.console.print(last.cert_pem.rstrip(), markup=False)


@app.command()
def verify(
    registry: str = _registry_option(),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Walk the hash chain: exit 9 if a row was edited or deleted."""
    from rich.text import Text

    from provision.registry import open_registry

    with open_registry(registry, read_only=True) as reg:
        report = reg.verify()
        in_flight = reg.claims()
    if json_out:
        print_json(
            {
                "ok": report.ok,
                "rows": report.rows,
                "problems": list(report.problems),
                "in_flight": [{"device_id": d, "station": s} for d, s in in_flight],
            }
        )
    else:
        for problem in report.problems:
            common.err_console.print(Text("✗ ", style="red") + common.safe_text(problem))
        for device_id, station in in_flight:
            common.err_console.print(f"in flight: {device_id} at station {station}")
        if report.ok:
            common.console.print(f"registry chain intact: {report.rows} rows")
    if not report.ok:
        raise _ChainBroken(f"registry chain broken: {len(report.problems)} problem(s)")


class _ChainBroken(CheckFailed):
    exit_code = RegistryError.exit_code


@app.command()
def export(
    fmt: str = typer.Option("json", "--format", "-f", help=f"One of: {', '.join(FORMATS)}."),
    # --out as in bundle pack and device keygen; --output kept.
    output: Path | None = typer.Option(
        None, "--out", "--output", "-o", help="File (default: stdout)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    registry: str = _registry_option(),
) -> None:
    """Device id, certificate PEM and fingerprints of every provisioned device; `nrfcloud`
    and `aws-iot` write what those clouds' onboarding takes."""
    from provision.registry import open_registry

    with open_registry(registry, read_only=True) as reg:
        count = export_to(reg.iter_provisioned(), fmt, output, force=force)
    if output is not None and str(output) != "-":
        common.err_console.print(f"exported {count} devices to {output}", markup=False)
