"""The promises every refused command keeps, checked in one place."""

from __future__ import annotations

from hostile_world import World
from typer.testing import Result


def assert_clean_failure(result: Result, world: World | None, code: int, *needles: str) -> str:
    """The promises of a refused command: the documented exit code, exactly one line on
    stderr (`error: …`), no traceback, no secret in any output. Returns the line."""
    assert isinstance(result.exception, SystemExit) or result.exception is None, (
        f"escaped: {result.exception!r}"
    )
    lines = result.stderr.splitlines()
    assert result.exit_code == code, (result.exit_code, result.stderr, result.stdout)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    if world is not None:
        for secret in world.secrets():
            assert secret not in result.output, "a secret was printed"
    return lines[0]
