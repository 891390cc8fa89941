"""Throwaway services for the test tiers that need them, started by .ci/services/*.sh.

Each script's `start` prints `export NAME=value` lines (what CI evals) and `stop DIR` removes
what it made. Without the service a tier skips with the reason, or fails when
PROVISION_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[1] / ".ci" / "services"


def skip_or_fail(reason: str) -> None:
    if os.environ.get("PROVISION_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PROVISION_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def start_service(script: str, what: str, env: dict[str, str]) -> tuple[dict[str, str] | None, str]:
    """(the variables `<script> start` exports, "") or (None, why it could not `what`)."""
    try:
        out = subprocess.run(
            ["bash", str(SERVICES / script), "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError) as err:
        stderr = getattr(err, "stderr", "") or ""
        return None, f"could not {what}: {err} {stderr.strip()[-300:]}"
    values = {}
    for line in out.splitlines():
        if "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = value.strip("'")
    return values, ""


def stop_service(script: str, directory: str) -> None:
    subprocess.run(
        ["bash", str(SERVICES / script), "stop", directory],
        capture_output=True,
        timeout=60,
        check=False,
    )
