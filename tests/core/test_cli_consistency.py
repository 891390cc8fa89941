"""What a user sees the same way across commands: the dialect lists in help texts, one table
style, table cells that cannot carry markup or terminal control characters."""

from __future__ import annotations

import pytest
from rich.console import Console

from provision.cli.common import safe_text, table
from provision.dialects import DIALECTS

BOX_CHARS = set("┏┓┗┛┃━│─┡┩╇┼")


@pytest.mark.parametrize(
    "command",
    [
        ["device", "write"],
        ["device", "info"],
        ["device", "tls-check"],
        ["sim"],
        ["line", "simulate"],
        ["line", "run"],
    ],
)
def test_dialect_help_names_every_dialect(cli, command: list[str]) -> None:
    r = cli([*command, "--help"], env={"COLUMNS": "400"})
    assert r.exit_code == 0
    # An option's help may wrap: its continuation lines are indented past the option names.
    lines = r.stdout.splitlines()
    dialect_lines = []
    for i, line in enumerate(lines):
        if "--dialect" in line or "--kind" in line:
            for more in lines[i + 1 :]:
                if not more.startswith(" " * 8) or more.lstrip().startswith("-"):
                    break
                line += " " + more.strip()
            dialect_lines.append(line)
    assert dialect_lines, r.stdout
    for name in DIALECTS:
        assert any(name in line for line in dialect_lines), (name, dialect_lines)


def test_tables_are_borderless_and_cells_plain() -> None:
    rows = table("sec_tag", "subject", title="slots")
    rows.add_row("42", safe_text("[bold]CN=x[/bold]\x1b[2J"))
    console = Console(width=120, record=True, force_terminal=False)
    console.print(rows)
    shown = console.export_text()
    assert not BOX_CHARS & set(shown)
    assert "[bold]CN=x[/bold]\\x1b[2J" in shown
