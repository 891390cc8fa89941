"""`testserver --port` on a taken port: bad input (exit 3) naming the address, not an
internal error."""

from __future__ import annotations

import socket

from provision.errors import ExitCode


def test_taken_port_is_bad_input(cli, pki_files) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = cli(["testserver", "--ca", pki_files["root"], "--cert", pki_files["server_cert"],
                 "--key", pki_files["server_key"], "--port", port])  # fmt: skip
    assert r.exit_code == ExitCode.INPUT, r.output
    assert f"127.0.0.1:{port}: cannot listen: Address already in use" in r.output
