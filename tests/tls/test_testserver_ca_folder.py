"""`provision testserver --ca` takes a CA folder from `pki init-ca` like `pki issue --ca`
and `device keygen --ca` do (its ca.crt is the root), as well as certificate files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tls_helpers import wait_for_line

from provision.errors import ExitCode
from provision.tls.client import handshake
from provision.tls.material import TLSMaterial


def test_ca_folder_serves_with_its_root(pki, pki_files, tmp_path) -> None:
    folder = tmp_path / "ca"
    folder.mkdir()
    shutil.copy(pki_files["root"], folder / "ca.crt")
    exe = Path(sys.executable).with_name("provision")
    args = [str(exe), "testserver", "--ca", str(folder), "--port", "0", "--once", "--json"]
    args += ["--cert", str(pki_files["server_cert"]), "--key", str(pki_files["server_key"])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = json.loads(wait_for_line(proc, b"\n", 15).splitlines()[0])
        port = int(first["address"].rsplit(":", 1)[1])
        material = TLSMaterial((pki.root,), pki.client.cert, pki.client.key)
        assert handshake("127.0.0.1", port, material).ok
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0


def test_folder_without_ca_crt_says_what_to_give(cli, pki_files, tmp_path) -> None:
    r = cli(["testserver", "--ca", tmp_path, "--cert", pki_files["server_cert"],
             "--key", pki_files["server_key"], "--port", "0"])  # fmt: skip
    assert r.exit_code == ExitCode.INPUT
    assert "without ca.crt; give the root CA certificate file" in r.output
