"""Start-up stays light: a command loads only the libraries it uses, so `provision --help` and
`provision device --help` start about as fast as esptool (figures: bench/bench_cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What only the work needs. Help is plain click: no rich. Option values are parsed without
# pydantic (cli/parsing.py). The dialect registry (provision.dialects) names dialects and
# their targets without importing one. provision.tls.report (plain values, the handshake
# timeout tls-check's help shows) is light.
HEAVY = (
    "cryptography",
    "construct",
    "rich",
    "pydantic",
    "serial",
    "provision.registry",
    "provision.tls",
    "provision.pki",
    "provision.dialects.",
    "provision.device",
    "provision.bundle.format",
    "provision.cli.output",
)
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
    "args",
    [
        ["device", "--help"],
        ["device", "write", "--help"],
        ["device", "tls-check", "--help"],
        ["check", "--help"],
        ["pki", "--help"],
        ["pki", "issue", "client", "--help"],
        ["bundle", "pack", "--help"],
        ["sim", "--help"],
        ["testserver", "--help"],
        ["line", "run", "--help"],
    ],
)
def test_help_loads_no_dialect_crypto_format_consoles_or_pydantic(args: list[str]) -> None:
    loaded = _loaded(*args)
    assert f"provision.cli.{args[0]}" in loaded
    assert _heavy(loaded) == set()


def test_a_bad_option_value_is_refused_without_the_work_loaded() -> None:
    # The value is refused by typer's own parser (pydantic, on the typer versions that use
    # it): the message is typer's, the device stack and the credential code stay unloaded.
    res = subprocess.run(
        [sys.executable, "-m", "provision", "device", "write", "--port", "x", "--tag", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "--tag" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_command_loads_only_its_own_group() -> None:
    modules = _loaded("sim", "--help")
    assert "provision.cli.sim" in modules
    assert not {"provision.cli.pki", "provision.cli.line", "provision.cli.device"} & modules


def test_the_work_itself_loads_what_it_needs(tmp_path) -> None:
    modules = _loaded(
        "pki", "init-ca", "--no-password", "--out-dir", str(tmp_path / "ca"), "--cn", "T"
    )
    assert "cryptography" in modules and (tmp_path / "ca" / "ca.crt").exists()


EXIT_PROBE = """
import atexit, sys, threading, time
atexit.register(lambda: print("exit handler ran", file=sys.stderr))
if sys.argv[1] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.3), print("thread done"))).start()
sys.argv = ["provision", *sys.argv[2:]]
from provision.cli.main import run
run()
"""


@pytest.mark.parametrize("thread", ["none", "thread"])
def test_the_quick_exit_keeps_the_exit_code_the_output_and_the_exit_handlers(thread) -> None:
    # run() skips the interpreter's teardown; what a caller can see must not change.
    ok = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, thread, "--version"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.startswith("provision ")
    assert "exit handler ran" in ok.stderr
    if thread == "thread":  # a thread still running is waited for, as a normal exit does
        assert ok.stdout.rstrip().endswith("thread done")
    bad = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, thread, "pki", "no-such-command"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "No such command" in bad.stderr
    assert "exit handler ran" in bad.stderr
