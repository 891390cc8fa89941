"""`line simulate --dialect` names the device kind as `provision sim --dialect` does;
--kind still works."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("option", ["--dialect", "--kind"])
def test_simulate_takes_dialect_and_kind(cli, option) -> None:
    result = cli(["line", "simulate", "1", option, "at-cmng", "--seconds", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    ready = json.loads(result.stdout.splitlines()[0])
    assert ready["event"] == "ready" and ready["kind"] == "at-cmng"
