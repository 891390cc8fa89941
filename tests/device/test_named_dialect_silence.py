"""A named --dialect that gets no answer says that the dialect may be the wrong one (and
that auto probes); the link failure stays exit 8."""

from __future__ import annotations

import pytest

from provision.errors import ExitCode


@pytest.mark.parametrize(
    ("kind", "dialect", "start"),
    [
        ("native", "at-cmng", "error: at-cmng: no reply to AT+CMEE=1"),
        ("native", "zephyr-shell", "error: zephyr-shell: no prompt after an empty line"),
        ("zephyr-shell", "native", "error: no answer to HELLO"),
    ],
)
def test_wrong_dialect_hint(cli, kind, dialect, start) -> None:
    r = cli(["device", "info", "--port", f"sim://{kind}", "--dialect", dialect,
             "--timeout", "0.3", "--retries", "1"])  # fmt: skip
    assert r.exit_code == ExitCode.LINK, r.output
    line = r.output.strip()
    assert line.startswith(start)
    assert line.endswith(f"(not a {dialect} device? --dialect auto probes)")


def test_a_pipelined_write_says_the_same_when_the_silence_shows_at_the_write(cli) -> None:
    """`device write` opens a native session pipelined: the silence shows at the write."""
    from pathlib import Path

    root_ca = Path(__file__).resolve().parents[1] / "vectors" / "fixtures" / "root-ca.pem"
    r = cli(["device", "write", "--port", "sim://zephyr-shell", "--dialect", "native",
             "--timeout", "0.3", "--retries", "1", "--tag", 42, "--root-ca", root_ca])  # fmt: skip
    assert r.exit_code == ExitCode.LINK, r.output
    line = r.output.strip()
    assert line.startswith("error: no answer to HELLO after 2 tries")
    assert line.endswith("(not a native device? --dialect auto probes)")
