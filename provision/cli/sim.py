"""`provision sim` — run a simulated device on a pseudo-terminal or a TCP port (127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import typer

from provision.cli import common
from provision.cli.common import dialect_choices, dialect_option, print_json
from provision.errors import InputError, UsageError, clip

app = typer.Typer(no_args_is_help=True)


@app.command()
def sim(
    pty: bool = typer.Option(False, "--pty", help="Serve on a new pseudo-terminal (prints it)."),
    tcp: int | None = typer.Option(
        None, "--tcp", min=0, max=65535, help="Serve on 127.0.0.1:PORT (0: any)."
    ),
    dialect: str = dialect_option(
        "native", auto=False, help=f"Device kind: {dialect_choices(auto=False)}."
    ),
    flash: Path | None = typer.Option(
        None, "--flash", help="Flash file: state survives restarts (default: in memory)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="Device limits: default, small, esp32 (the kind's own if unset)."
    ),
    chip: str | None = typer.Option(
        None, "--chip", help="esp32: the chip, esp32 (default), esp32s3 or esp32c3."
    ),
    baud: int = typer.Option(115200, "--baud", help="Emulated line rate (0: no pacing)."),
    flip: float = typer.Option(0.0, "--flip", help="Bit-flip probability per byte."),
    drop: float = typer.Option(0.0, "--drop", help="Drop probability per byte."),
    dup: float = typer.Option(0.0, "--dup", help="Duplicate probability per byte."),
    stall: float = typer.Option(0.0, "--stall", help="Stall probability per byte."),
    stall_s: float = typer.Option(0.5, "--stall-s", help="Seconds a stall lasts."),
    cut_at: int | None = typer.Option(
        None, "--cut-at", help="Power cut after this many received bytes."
    ),
    flash_cut: int | None = typer.Option(
        None, "--flash-cut", help="Power cut after this many flash bytes programmed."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for faults and the device id."),
    signer: Path | None = typer.Option(
        None, "--signer", help="Provisioning public key: apply signed bundles only."
    ),
    uid: str | None = typer.Option(
        None,
        "--uid",
        help="Device id (native: hex; esp32: the MAC); nRF91 IMEI and UUID derive from it.",
    ),
    opt: list[str] = typer.Option(
        [],
        "--opt",
        "-o",
        help="Device option NAME=VALUE, as in sim:// URLs (repeatable; --list-options).",
    ),
    list_options: bool = typer.Option(
        False, "--list-options", help="Print the options of --dialect and exit."
    ),
    once: bool = typer.Option(False, "--once", help="TCP: exit after the first client."),
    json_out: bool = typer.Option(
        False, "--json", help="Print the port as one JSON line when it is ready."
    ),
) -> None:
    """Run a simulated device until interrupted."""
    from provision.sim.serve import RUNNER_OPTIONS, build_runner, kind_options, serve_pty, serve_tcp

    if list_options:
        own = kind_options(dialect) or {}
        table = {**RUNNER_OPTIONS, **own}
        if json_out:
            print_json({"dialect": dialect, "options": table})
        else:
            for name, text in table.items():
                common.console.print(f"{name:20} {text}", markup=False, highlight=False)
        return
    if pty == (tcp is not None):
        raise UsageError("choose one of --pty or --tcp PORT")
    options = {
        "baud": str(baud),
        "flip": str(flip),
        "drop": str(drop),
        "dup": str(dup),
        "stall": str(stall),
        "stall_s": str(stall_s),
        "seed": str(seed),
    }
    for key, value in (
        ("flash", flash),
        ("cut_at", cut_at),
        ("flash_cut", flash_cut),
        ("signer", signer),
        ("uid", uid),
        ("profile", profile),
        ("chip", chip),
    ):
        if value is not None:
            options[key] = str(value)
    for item in opt:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--opt {clip(item)!r}: expected NAME=VALUE")
        options[name.strip()] = value

    from provision.sim.serve import SimRunner

    runner = build_runner(dialect, options)  # fails on bad options before printing a port

    def make() -> SimRunner:
        # A new connection meets the same device (same flash), freshly booted.
        return SimRunner(dialect, runner.ctx, baud=runner.baud, faults=runner.faults)

    def ready(where: str) -> None:
        if json_out:
            print_json({"event": "ready", "port": where, "dialect": dialect})
        else:
            common.console.print(where)
        common.err_console.print(
            f"simulated {dialect} device on {where} (flash: {flash or 'in memory'}); Ctrl-C stops"
        )

    try:
        if pty:
            serve_pty(runner, ready)
        else:
            first = [runner]

            def factory() -> SimRunner:
                return first.pop() if first else make()

            serve_tcp(factory, tcp or 0, ready, once=once)
    except KeyboardInterrupt:
        return
