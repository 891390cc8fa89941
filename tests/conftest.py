"""Shared fixtures. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli():
    """Invoke the real `provision` app; returns a function (args, input=None, env=None)."""
    from provision.cli.main import app

    runner = CliRunner()

    def invoke(args: list[str], input: str | None = None, env: dict[str, str] | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input, env=env)

    return invoke


def require_or_skip(condition: bool, reason: str, env_var: str = "PROVISION_REQUIRE_TOOLCHAIN"):
    """Skip with `reason` unless `env_var`=1 (CI), where a missing tier is a failure."""
    if condition:
        return
    if os.environ.get(env_var) == "1":
        pytest.fail(f"required by {env_var}=1 but unavailable: {reason}")
    pytest.skip(reason)
