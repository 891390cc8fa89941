"""Mutual-TLS checks per second: our client (host side and through the simulated device)
against `openssl s_client` doing the same handshake to the same server.

Each iteration is one complete mutual-TLS handshake to `provision`'s TestServer on 127.0.0.1
(TLS 1.3, P-256, credentials made with provision.pki at start): the host-side check
(`handshake` from credential bytes, temp key file included), the device-side check (TLS_CHECK
over the in-process simulated native device, link and flash included), and
`openssl s_client` (a new process per handshake: what a shell-script check costs).
No goal in the issues; the figures show what a tls-check adds to a provisioning run.

    .venv/bin/python bench/bench_tls.py [--count 30]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import provision.device
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key
from provision.tls.client import handshake
from provision.tls.device_check import check_on_device
from provision.tls.material import TLSMaterial
from provision.tls.server import TestServer


def rate(label: str, count: int, run) -> float:
    start = time.perf_counter()
    for _ in range(count):
        run()
    seconds = time.perf_counter() - start
    per = seconds / count * 1000
    print(f"{label:<44} {count / seconds:8.1f} handshakes/s  {per:7.2f} ms each")
    return count / seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=30)
    args = parser.parse_args()

    root = create_root_ca("Bench Root")
    skey, scert = root.issue_server(["localhost", "127.0.0.1"])
    ckey, ccert = root.issue_client("bench-device")
    root_pem, client = cert_pem(root.cert), (cert_pem(ccert), serialize_private_key(ckey))
    server_material = TLSMaterial((root_pem,), cert_pem(scert), serialize_private_key(skey))
    client_material = TLSMaterial((root_pem,), *client)
    creds = CredentialSet.of(
        [
            Slot(42, SlotType.ROOT_CA, Encoding.PEM, root_pem),
            Slot(42, SlotType.CLIENT_CERT, Encoding.PEM, client[0]),
            Slot(42, SlotType.CLIENT_KEY, Encoding.PEM, client[1]),
        ]
    )

    with TestServer(server_material, tls_version="1.3").start() as server:

        def host() -> None:
            report = handshake("127.0.0.1", server.port, client_material)
            assert report.ok, report.summary()

        host_rate = rate("host side (provision.tls.client)", args.count, host)

        with provision.device.open("sim://native", dialect="native") as device:
            device.write(creds)

            def on_device() -> None:
                report = check_on_device(device, "127.0.0.1", server.port, 42)
                assert report.ok, report.summary()

            rate("simulated device (TLS_CHECK over the link)", args.count, on_device)

        openssl = shutil.which("openssl")
        if openssl is None:
            print("openssl not installed: no peer figure")
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            files = {}
            for name, data in (("root", root_pem), ("cert", client[0]), ("key", client[1])):
                files[name] = Path(tmp) / f"{name}.pem"
                files[name].write_bytes(data)
            files["key"].chmod(0o600)
            command = [
                openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-tls1_3",
                "-cert", str(files["cert"]), "-key", str(files["key"]),
                "-CAfile", str(files["root"]), "-verify_return_error", "-ign_eof", "-quiet",
            ]  # fmt: skip

            def peer() -> None:
                done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True)
                assert b"ACCEPTED" in done.stdout, done.stderr[-300:]

            peer_rate = rate("openssl s_client (one process each)", args.count, peer)
    print(f"host side / openssl s_client: {host_rate / peer_rate:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
