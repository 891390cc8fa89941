"""Start-up stays light: a command loads only the libraries it uses, so `provision --help` and
`provision device --help` start about as fast as esptool (figures: bench/bench_cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# rich.table is not among them: rich.console itself imports it. provision.tls.report (plain
# values, the handshake timeout tls-check's help shows) is light.
HEAVY = ("cryptography", "construct", "provision.registry", "provision.tls", "provision.pki")
LIGHT = {"provision.tls.report"}

PROBE = """
import json, sys
from provision.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(*args: str) -> set[str]:
    res = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    return set(json.loads(res.stdout.splitlines()[-1]))


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith(HEAVY) and m not in LIGHT and m != "provision.tls"}


def test_top_level_help_loads_no_command_library() -> None:
    assert _heavy(_loaded("--help")) == set()


@pytest.mark.parametrize(
    "args", [["device", "--help"], ["device", "write", "--help"], ["sim", "--help"]]
)
def test_help_loads_no_crypto_registry_or_tls(args: list[str]) -> None:
    # construct comes with provision.dialects (the dialect profiles size items by the bundle
    # format's MAX_PAYLOAD); cryptography, the registry and TLS wait for the work itself.
    assert {m for m in _heavy(_loaded(*args)) if not m.startswith("construct")} == set()


def test_a_command_loads_only_its_own_group() -> None:
    modules = _loaded("sim", "--help")
    assert "provision.cli.sim" in modules
    assert not {"provision.cli.pki", "provision.cli.line", "provision.cli.device"} & modules


def test_the_work_itself_loads_what_it_needs(tmp_path) -> None:
    modules = _loaded(
        "pki", "init-ca", "--no-password", "--out-dir", str(tmp_path / "ca"), "--cn", "T"
    )
    assert "cryptography" in modules and (tmp_path / "ca" / "ca.crt").exists()
