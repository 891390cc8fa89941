"""The `provision` command line: one thin typer module per command group."""
