"""Bad command lines, generated from the CLI's own command tree: an unknown option, a number
outside its option's range, an unknown dialect, and a 10,000-character value for every
text option. Usage mistakes are exit 2 (typer's code) in one line; a huge value is never
echoed in full; nothing is created and nothing escapes as an internal error."""

from __future__ import annotations

import pytest
from hostile_checks import assert_clean_failure
from hostile_tree import Command, Param, click_context, commands
from hostile_world import World, valid_value

from provision.errors import CLIP_CHARS, ExitCode

DOCUMENTED = {int(code) for code in ExitCode} - {int(ExitCode.INTERNAL)}
# Commands that serve until stopped when every option is acceptable: a value they ignore
# would leave them serving (the battery cannot stop them).
SERVES = {"sim", "testserver", "line simulate", "line run"}

ALL = list(commands())


def _required(world: World, cmd: Command, skip: Param | None = None) -> list[str]:
    args = list(cmd.path)
    for q in cmd.params:
        if q.required and q is not skip:
            value = valid_value(world, cmd, q) or str(world / f"new-{q.key}")
            args += [q.flag, value] if q.flag else [value]
    return args


@pytest.mark.parametrize("cmd", ALL, ids=[c.id for c in ALL])
def test_unknown_option_is_a_usage_error_in_one_line(run, world, cmd) -> None:
    result = run(*_required(world, cmd), "--no-such-option")
    assert_clean_failure(result, world, ExitCode.USAGE, "--no-such-option")


def _ranged() -> list[tuple[Command, str, str]]:
    import typer

    from provision.cli.main import app

    out = []
    root = typer.main.get_command(app)
    ctx = click_context(root)
    for cmd in ALL:
        node = root
        for part in cmd.path:
            node = node.get_command(ctx, part)
        for p in node.params:
            low, high = getattr(p, "min", None), getattr(p, "max", None)
            if not p.opts or (low is None and high is None):
                continue
            value = str(high + 1) if high is not None else str(low - 1)
            out.append((cmd, p.opts[0], value))
    return out


@pytest.mark.parametrize(
    ("cmd", "flag", "value"), _ranged(), ids=[f"{c.id}:{f}={v}" for c, f, v in _ranged()]
)
def test_number_outside_its_range_is_a_usage_error(run, world, cmd, flag, value) -> None:
    result = run(*_required(world, cmd), flag, value)
    assert_clean_failure(result, world, ExitCode.USAGE, flag)


DIALECT = [cmd for cmd in ALL if cmd.param("dialect") is not None]


@pytest.mark.parametrize("cmd", DIALECT, ids=[c.id for c in DIALECT])
def test_unknown_dialect_is_a_usage_error_naming_the_valid_ones(run, world, cmd) -> None:
    flag = cmd.param("dialect").flag
    result = run(*_required(world, cmd), flag, "nrf91")
    assert_clean_failure(result, world, ExitCode.USAGE, "'nrf91'", "native")


TEXT = [(cmd, p) for cmd in ALL if cmd.id not in SERVES for p in cmd.params if p.is_str and p.flag]


@pytest.mark.parametrize(("cmd", "param"), TEXT, ids=[f"{c.id}:{p.key}" for c, p in TEXT])
def test_huge_text_value_is_never_echoed_in_full(run, world, cmd, param) -> None:
    before = world.tree()
    huge = "x" * 10_000
    result = run(*_required(world, cmd, skip=param), param.flag, huge)
    assert result.exit_code in DOCUMENTED, (result.exit_code, result.output[:300])
    assert "Traceback" not in result.output
    assert len(result.stderr.splitlines()) <= 1, result.stderr[:500]
    assert len(result.stderr) < 8 * CLIP_CHARS + 100, "an echoed value was not clipped"
    assert huge not in result.output
    for secret in world.secrets():
        assert secret not in result.output
    if result.exit_code != 0:
        assert world.tree() == before, "a refused command changed the world"


def test_unknown_root_option_is_one_line_too(run) -> None:
    # Parsed before any command runs (the root's own context): no box over several lines.
    assert_clean_failure(run("--no-such-option"), None, ExitCode.USAGE, "--no-such-option")
    result = run()  # no arguments: the help, as before
    assert "Usage: provision" in result.output or "Usage:" in result.output
