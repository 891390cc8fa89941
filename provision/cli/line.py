"""`provision line run` (a factory station) and `provision line simulate N` (jigs to rehearse)."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from provision.cli import common
from provision.cli.common import dialect_option, print_json
from provision.errors import ExitCode, UsageError

if TYPE_CHECKING:
    # `line run` imports the line (device stack, registry, CA, TLS) and rich when it runs:
    # `line --help` loads none of it.
    from rich.console import RenderableType
    from rich.table import Table

    from provision.line import Line
    from provision.line.runner import Summary
    from provision.line.station import Outcome

app = typer.Typer(no_args_is_help=True, help="Factory line: provision many devices on many ports.")

_print_lock = threading.Lock()


def _emit(outcome: Outcome) -> None:
    with _print_lock:
        print_json(outcome.to_json())
        if outcome.represented is not None:
            # A second certificate for one board is worth a human's look, not only a field.
            common.err_console.print(
                common.safe_text(
                    f"{outcome.port}: device {outcome.device_id} was {outcome.represented.text()}"
                )
            )


BY_ID = "/dev/serial/by-id/"
DEVICE_WIDTH = 16  # an IMEI (15 digits) or a 16-digit hex id whole; longer ids end in "…"
COUNTS = "ok/skip/fail"
ERROR_MIN = 24
PORT_MIN = 12


def _tail(name: str, width: int) -> str:
    # By-id names differ at the end (serial number, interface): keep that end.
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _status_table(line: Line, width: int | None = None) -> Table:
    """The live view: one row per port, and the same column widths on every refresh (they
    depend on the port names and the terminal width only, not on what the rows hold). Below
    100 columns the device id gives its room to the error message."""
    from provision.line.station import Step

    state_width = max(len(step.value) for step in Step) + len(" 999.9s")
    width = width or common.err_console.width
    names = {state.port: state.port.removeprefix(BY_ID) for state in line.states.values()}
    show_device = width >= 100
    columns = 5 if show_device else 4
    fixed = state_width + len(COUNTS) + ERROR_MIN + 2 * columns
    fixed += DEVICE_WIDTH if show_device else 0
    longest = max(map(len, names.values()), default=4)
    port_width = max(PORT_MIN, min(longest, width - fixed))
    rows = common.table(title=f"station {line.cfg.station}")
    rows.expand = True  # the last column takes what the fixed ones leave
    rows.add_column("port", width=port_width, no_wrap=True)
    rows.add_column("state", width=state_width, no_wrap=True)
    if show_device:
        rows.add_column("device", width=DEVICE_WIDTH, no_wrap=True, overflow="ellipsis")
    rows.add_column(COUNTS, width=len(COUNTS), justify="right", no_wrap=True)
    # The rest of the width; one line, cut with "…" (the full text is in --json and the log).
    rows.add_column("last error", ratio=1, no_wrap=True, overflow="ellipsis")
    now = time.monotonic()
    for state in line.states.values():
        step = state.step.value
        if state.step not in (Step.WAITING, Step.STOPPED):
            step = f"{step} {now - state.since:4.1f}s"
        error = state.last_error or ""
        if state.last_message:
            error = f"{error}: {state.last_message}" if error else state.last_message
        failed = state.counts.get("failed", 0) + state.counts.get("rolled_back", 0)
        cells: list[RenderableType] = [common.safe_text(_tail(names[state.port], port_width)), step]
        if show_device:
            cells.append(common.safe_text(state.device_id or "-"))
        cells.append(f"{state.counts.get('ok', 0)}/{state.counts.get('skipped', 0)}/{failed}")
        cells.append(common.safe_text(error))
        rows.add_row(*cells)
    return rows


def _summary_table(summary: Summary) -> Table:
    rows = common.table("what", title="line summary", show_header=False)
    rows.add_column("value", justify="right")
    for status in ("ok", "skipped", "failed", "rolled_back", "busy"):
        rows.add_row(status, str(summary.counts.get(status, 0)))
    rows.add_row("ports", str(summary.ports))
    rows.add_row("seconds", f"{summary.seconds:.1f}")
    rows.add_row("devices/hour", f"{summary.devices_per_hour:.0f}")
    for code, n in sorted(summary.failures.items(), key=lambda kv: -kv[1]):
        rows.add_row(f"failed: {code}", str(n))
    return rows


def _tell_no_device(line: Line, told: dict[str, str | None]) -> None:
    """Without the live table, say once per port and reason why it has no device yet: a
    wrong dialect or a dead port would otherwise be a silent wait."""
    for state in line.states.values():
        reason = state.no_device
        before, told[state.port] = told.get(state.port), reason
        # Recorded before printing: a Ctrl-C that lands just after the line is printed must
        # not make the next round print it again.
        if reason is not None and before != reason:
            common.err_console.print(
                common.safe_text(
                    f"{state.port}: no device to work on yet ({reason}); still waiting "
                    f"— check the board, the port and the dialect ({line.cfg.dialect})"
                )
            )


@app.command()
def run(
    config: Path = typer.Argument(..., help="Station config (TOML)."),
    port: list[str] = typer.Option(
        None, "--port", "-p", help="Port, glob or URL (repeatable); replaces the config's ports."
    ),
    registry: str | None = typer.Option(None, "--registry", "-r", help="Registry path or URL."),
    station: str | None = typer.Option(None, "--station", help="Station name."),
    operator: str | None = typer.Option(
        None, "--operator", envvar="PROVISION_OPERATOR", help="Operator recorded per device."
    ),
    dialect: str | None = dialect_option(None, auto=True),
    flow: str | None = typer.Option(None, "--flow", help="host-key or device-keygen."),
    ca_key: str | None = typer.Option(
        None, "--ca-key", help="CA key file or pkcs11: URI (PIN via pin-source or env)."
    ),
    fast_baud: str | None = typer.Option(
        None,
        "--fast-baud",
        help="Rate each device's session switches to, or 'auto'; replaces the config's.",
    ),
    count: int | None = typer.Option(None, "--count", "-n", help="Stop after N devices."),
    per_port: int | None = typer.Option(None, "--per-port", help="Stop each port after N."),
    force: bool = typer.Option(False, "--force", help="Re-provision devices already done."),
    json_out: bool = typer.Option(False, "--json", help="End with a JSON summary line."),
    live: bool = typer.Option(True, "--live/--no-live", help="Live per-port status (terminal)."),
) -> None:
    """Provision devices on every port until Ctrl-C (or --count): one JSON line per device.

    First Ctrl-C or SIGTERM: finish the devices in flight, then stop. Second: roll them back
    now. Either way no claim is left behind (exit 130).
    """
    from rich.live import Live

    from provision.cli.signals import stop_signals
    from provision.line import Line, load_config
    from provision.line.config import default_operator

    cfg = load_config(config).with_overrides(
        ports=port or None,
        registry=registry,
        station=station,
        dialect=dialect,
        flow=flow,
        ca_key=ca_key,
        fast_baud=fast_baud,
    )
    line = Line(
        cfg,
        operator=operator or cfg.operator or default_operator(),
        force=force,
        limit=count,
        per_port=per_port,
        emit=_emit,
    )
    if line.reclaimed:
        common.err_console.print(
            common.safe_text(
                f"released {len(line.reclaimed)} claim(s) station {cfg.station} still held "
                f"from a run that did not end cleanly: {', '.join(line.reclaimed)}"
            )
        )
    interrupted: list[int] = []  # signals received
    show_live = live and common.err_console.is_terminal

    def on_signal(signum: int, frame: object) -> None:
        # Only flags here: the port threads and the wait loop below do the work.
        interrupted.append(signum)
        if len(interrupted) == 1:
            line.stop()
        else:
            line.abort()

    def wait(line: Line) -> None:
        display = (
            Live(
                _status_table(line, common.err_console.width),
                console=common.err_console,
                refresh_per_second=4,
                # JSON lines to a pipe or file must stay on stdout; on a terminal they are
                # printed above the table instead of through it.
                redirect_stdout=sys.stdout.isatty(),
            )
            if show_live
            else contextlib.nullcontext()
        )
        told: dict[str, str | None] = {}
        said = 0
        with display as shown:
            while line.alive():
                time.sleep(0.25)
                if shown is not None:
                    shown.update(_status_table(line, common.err_console.width))
                else:
                    _tell_no_device(line, told)
                if len(interrupted) > said:
                    said = len(interrupted)
                    common.err_console.print(
                        "stopping: finishing devices in flight "
                        "(a second Ctrl-C or SIGTERM rolls them back)"
                        if said == 1
                        else "aborting: rolling back devices in flight"
                    )

    with stop_signals(on_signal):
        summary = line.run(wait=wait)
    common.err_console.print(_summary_table(summary))
    if json_out:
        print_json(summary.to_json())
    if interrupted:
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    if summary.failures:
        raise typer.Exit(int(ExitCode.DEVICE))


@app.command()
def simulate(
    count: int = typer.Argument(..., help="How many simulated ports (jigs)."),
    # --dialect as in `provision sim` and `line run`; --kind (the jig:// query word) kept.
    kind: str = dialect_option("native", "--dialect", "--kind", auto=False),
    baud: int = typer.Option(115200, "--baud", help="Emulated line speed (0: unpaced)."),
    seconds: float | None = typer.Option(None, "--seconds", help="Stop after this long."),
    json_out: bool = typer.Option(False, "--json", help="Print the ports as one JSON line."),
) -> None:
    """Start N simulated jigs on pseudo-terminals: a new device each time a port is reopened.

    Point `provision line run --port …` at the printed ports. Ctrl-C stops the jigs.
    """
    from provision.line.simulate import serve_jigs, start_jigs

    if seconds is not None and seconds <= 0:
        raise UsageError("--seconds must be positive")
    jigs = start_jigs(count, kind=kind, baud=baud or None)
    ports = [j.path for j in jigs]
    if json_out:
        print_json({"event": "ready", "kind": kind, "baud": baud, "ports": ports})
    else:
        common.console.print(f"{count} simulated {kind} jig(s) at {baud or 'unpaced'} baud:")
        for p in ports:
            common.console.print(f"  {p}", markup=False)
        common.console.print(f"ports = {json.dumps(ports)}", markup=False)
        common.console.print("Ctrl-C to stop.")
    sys.stdout.flush()
    deadline = None if seconds is None else time.monotonic() + seconds
    with contextlib.suppress(KeyboardInterrupt):
        serve_jigs(jigs, until=lambda: deadline is not None and time.monotonic() >= deadline)
    common.err_console.print(f"served {sum(j.devices for j in jigs)} device(s)")
