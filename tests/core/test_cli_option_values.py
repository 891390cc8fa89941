"""Option values mean what typer says they mean: the fast parser (cli/parsing.py) takes the
plain cases itself and gives every other value to typer's own parser, so for every option of
every command the result, or the refusal, is typer's."""

from __future__ import annotations

import pytest
import typer

from provision.cli import main, parsing

SAMPLES = [
    None,
    "42",
    "-1",
    "007",
    " 5",
    "+5",
    "1_0",
    "1.5",
    "1e3",
    "",
    "abc",
    "yes",
    "sim://native",
    0,
    5,
    2.0,
    True,
    ["a", "b"],
    ("3", "4"),
    [],
    (),
]


def _every_option() -> list[tuple[str, object]]:
    root = typer.main.get_command(main.app)
    ctx = root.make_context("provision", ["--help"], resilient_parsing=True)
    found = []
    for name in main.GROUPS:
        command = root.get_command(ctx, name)
        for path, leaf in _leaves(command, (name,)):
            for param in leaf.params:
                found.append((" ".join(path) + " " + (param.name or ""), param, leaf))
    return found


def _leaves(command, path):
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield path, command


def _outcome(parser, value, param, ctx):
    try:
        return ("value", parser.coerce(value, param=param, ctx=ctx))
    except typer.BadParameter as err:
        return ("refused", err.format_message())


def test_plain_options_parse_as_typer_parses_them(tmp_path) -> None:
    pytest.importorskip("typer._coercion", reason="typer parses through click types here")
    from typer._coercion import build_runtime_param

    readable = tmp_path / "f.pem"
    readable.write_text("x")
    samples = [*SAMPLES, str(readable), readable, str(tmp_path / "missing")]
    fast = 0
    for where, param, leaf in _every_option():
        mine = param.get_runtime_param()
        if not isinstance(mine, parsing._FastValue):
            continue
        fast += 1
        theirs = build_runtime_param(param.type_descriptor)
        ctx = typer.Context(leaf)
        for value in samples:
            got = _outcome(mine, value, param, ctx)
            want = _outcome(theirs, value, param, ctx)
            assert got == want, (where, value)
            if got[0] == "value" and isinstance(got[1], list):
                assert [type(x) for x in got[1]] == [type(x) for x in want[1]], (where, value)
            elif got[0] == "value":
                assert type(got[1]) is type(want[1]), (where, value)
    # Most options of the CLI take the fast path (else the start-up gain is gone).
    assert fast > 100
