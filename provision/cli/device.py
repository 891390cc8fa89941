"""`provision device` commands (to be filled in)."""

import typer

app = typer.Typer(no_args_is_help=True)

from provision.cli.tls_check import tls_check  # noqa: E402

app.command("tls-check")(tls_check)
