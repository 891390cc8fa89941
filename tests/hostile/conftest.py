"""Fixtures of the hostile-input battery: one world of valid inputs per module, a runner that
cannot hang, and the promises every hostile run must keep."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hostile_world import World, make_world
from typer.testing import CliRunner, Result

from provision.cli.main import app
from provision.errors import ExitCode

# A FIFO with no writer or a character device read to the end would hang or exhaust memory:
# each run gets this long before it counts as a hang.
RUN_SECONDS = 20

DOCUMENTED = {int(code) for code in ExitCode}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("world"))


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang(f"no answer within {RUN_SECONDS} s")


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """run(*args) → the CliRunner result of `provision args`, in an empty working directory
    (defaults like `provision-registry.sqlite` land there, and must not), with no
    password in the environment and no terminal to prompt on."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVISION_DEBUG", raising=False)
    monkeypatch.delenv("PROVISION_ALLOW_PIPED_PASSWORD", raising=False)
    previous = signal.signal(signal.SIGALRM, _alarm)
    codes: list[int] = []

    def invoke(*args: object) -> Result:
        signal.alarm(RUN_SECONDS)
        try:
            result = CliRunner().invoke(app, [str(a) for a in args])
        finally:
            signal.alarm(0)
        codes.append(result.exit_code)
        return result

    yield invoke
    signal.signal(signal.SIGALRM, previous)
    if all(codes):  # a refused command leaves nothing behind (a successful one may write)
        leftovers = sorted(p.name for p in tmp_path.iterdir())
        assert leftovers == [], f"files created in the working directory: {leftovers}"
