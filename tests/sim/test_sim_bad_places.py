"""A flash file that cannot be used, or a TCP port that is taken, is bad input (exit 3) with
the path or address named — it was an internal error (IsADirectoryError, OSError)."""

from __future__ import annotations

import socket

import pytest

from provision.errors import ExitCode


@pytest.mark.parametrize("where", ["folder", "missing/parent/dev.flash"])
def test_unusable_flash_file(cli, tmp_path, where) -> None:
    (tmp_path / "folder").mkdir()
    flash = tmp_path / where
    r = cli(["device", "list", "--port", f"sim://native?flash={flash}"])
    assert r.exit_code == ExitCode.INPUT, r.output
    # The one input reader's words for a folder; the flash store's for a missing parent.
    assert r.output.startswith(f"error: {flash}: "), r.output
    assert "flash file" in r.output and r.output.count("\n") == 1
    r = cli(["sim", "--tcp", "0", "--flash", flash])
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "flash file" in r.output


def test_taken_tcp_port(cli) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = cli(["sim", "--tcp", port])
    assert r.exit_code == ExitCode.INPUT, r.output
    assert r.output.strip() == (
        f"error: 127.0.0.1:{port}: cannot listen: Address already in use "
        "(choose another port, 0 for any)"
    )
