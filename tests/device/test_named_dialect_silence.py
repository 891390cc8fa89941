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
