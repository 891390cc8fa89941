"""`--dialect auto` on a port where nothing answers: a link failure (exit 8, "no answer" in
the README's table) with what to check — it was exit 7, "the device answered with an error"."""

from __future__ import annotations

import pytest

import provision.device
from provision.errors import ExitCode, LinkError


def test_silent_port_is_a_link_failure(cli) -> None:
    url = "sim://native?silent_after=0"
    r = cli(["device", "info", "--port", url, "--timeout", "0.2", "--retries", "1"])
    assert r.exit_code == ExitCode.LINK, r.output
    assert r.output.strip() == (
        f"error: {url}: no known dialect answered (tried native, at-cmng, zephyr-shell, "
        "at-shell): is a device on this port, powered, at this --baud? If it is, name its "
        "--dialect"
    )
    with pytest.raises(LinkError):
        provision.device.open(url, timeout=0.2, retries=1)
