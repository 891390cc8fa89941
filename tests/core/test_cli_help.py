"""Every command's help fits an 80-column terminal: options named in full, each described,
one metavar style, and an example (esptool-style epilog) that uses only real options."""

from __future__ import annotations

import re
import shlex

import pytest

from provision.cli.conventions import leaves
from provision.cli.examples import EXAMPLES
from provision.cli.main import GROUPS, _load


def _commands() -> list[tuple[str, object]]:
    found = []
    for group in GROUPS:
        for path, leaf in leaves(_load(group)):
            found.append((" ".join((group, *path)), leaf))
    return found


COMMANDS = _commands()


def _visible(leaf) -> list:
    return [p for p in leaf.params if not getattr(p, "hidden", False)]


@pytest.mark.parametrize(("name", "leaf"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_fits_80_columns_with_every_option_named_and_described(cli, name, leaf):
    r = cli([*name.split(), "--help"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    text = r.stdout
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert too_wide == [], too_wide
    for param in _visible(leaf):
        shown = getattr(param, "visible_opts", getattr(param, "opts", []))  # aliases hidden
        for opt in shown if param.param_type_name == "option" else []:
            # In full, not cut ("--sign-key-password…"), bounded by a space, comma or EOL.
            assert re.search(rf"(^|[ ,]){re.escape(opt)}([ ,]|$)", text, re.M), (name, opt)
        assert (param.help or "").strip(), f"{name}: {param.name} has no description"
    assert "Examples:" in text, name


@pytest.mark.parametrize(("name", "leaf"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_one_metavar_style(cli, name, leaf):
    text = cli([*name.split(), "--help"], env={"COLUMNS": "200"}).stdout
    assert not re.search(r"<(path|str|int|float|bool|list)", text), text
    for param in _visible(leaf):
        if param.metavar:
            assert param.metavar.isupper(), (name, param.name, param.metavar)


def test_examples_use_only_options_their_command_has():
    commands = dict(COMMANDS)
    assert set(EXAMPLES) == set(commands)
    for name, lines in EXAMPLES.items():
        opts = {o for p in commands[name].params for o in getattr(p, "opts", [])}
        text = " ".join(line.rstrip("\\") for line in lines)
        checked = 0
        for command_line in text.split("provision ")[1:]:
            command_line = command_line.split("#")[0]
            if "|" in command_line:  # `... -o - | provision bundle inspect -`: the left side
                command_line = command_line.split("|")[0]
            words = shlex.split(command_line)
            if words[: len(name.split())] != name.split():
                continue  # the other side of a pipe
            used = {w.split("=")[0] for w in words if w.startswith("-") and w != "-"}
            assert used <= opts, (name, used - opts)
            checked += 1
        assert checked, f"{name}: no example runs it"


def test_port_help_names_linux_macos_and_windows_forms(cli):
    text = cli(["device", "write", "--help"], env={"COLUMNS": "200"}).stdout
    for form in ("/dev/ttyACM0", "/dev/cu.usbmodem", "COM3"):
        assert form in text
