"""Device-side crypto on the posix firmware stub with mbedTLS (issue 15), beside the
simulator's modelled times (provision/sim/profile.py keygen_ms, verify_ms).

Measures over TCP 127.0.0.1, median of N runs each:
  keygen     KEYGEN round trip: P-256 key, PKCS#10 CSR, the key committed to flash
  verify     COMMIT of a signed bundle minus COMMIT of the same bundle unsigned (ECDSA P-256)
  handshake  TLS_CHECK round trip against an in-process `provision testserver` (TLS 1.2)
and the posix binary's size with and without mbedTLS (plus the shared libraries it loads).
These are host figures (x86-64); the modelled times are for a Cortex-M class device, so the
ratio says how far apart they are: bench_mcu_crypto.py measures the same paths on Cortex-M.

    .venv/bin/python bench/bench_stub_crypto.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

import provision.device
from provision.bundle import format as bundle_format
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key
from provision.pki.signing import sign_digest
from provision.sim.profile import PROFILES
from provision.tls.device_check import check_on_device
from provision.tls.material import TLSMaterial
from provision.tls.server import TestServer

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "firmware_stub"
BINARY = STUB / "build" / "posix" / "provision-stub"


def median_ms(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def start_stub(workdir: Path, name: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [str(BINARY), "--tcp", "0", "--flash", str(workdir / f"{name}.flash"), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout
    return proc, proc.stdout.readline().strip()


def binary_sizes() -> None:
    for mbedtls in ("0", "1"):
        out = Path(tempfile.mkdtemp()) / "build"
        subprocess.run(
            ["make", "-s", "-C", str(STUB), "posix", f"MBEDTLS={mbedtls}", f"BUILD={out}"],
            check=True,
        )
        text = (
            subprocess.run(
                ["size", str(out / "posix" / "provision-stub")], capture_output=True, text=True
            )
            .stdout.splitlines()[1]
            .split()[0]
        )
        print(f"  posix stub .text, mbedTLS {'linked' if mbedtls == '1' else 'left out'}: {text} B")
    libs = subprocess.run(["ldd", str(BINARY)], capture_output=True, text=True).stdout
    for line in libs.splitlines():
        if "libmbed" in line:
            path = line.split("=>")[1].split()[0]
            text = subprocess.run(["size", path], capture_output=True, text=True)
            print(f"  + {Path(path).name} .text {text.stdout.splitlines()[1].split()[0]} B")


def measure(runs: int) -> dict[str, float]:
    """Median ms of KEYGEN, the signature check and TLS_CHECK on the posix stub (built here)."""
    subprocess.run(["make", "-s", "-C", str(STUB), "posix"], check=True)
    root = create_root_ca("Bench Root")
    skey, scert = root.issue_server(["localhost", "127.0.0.1"])
    ckey, ccert = root.issue_client("bench-device")
    signer = create_root_ca("Bench Signer").key
    creds = CredentialSet.of(
        [
            Slot(42, SlotType.ROOT_CA, Encoding.PEM, cert_pem(root.cert)),
            Slot(42, SlotType.CLIENT_CERT, Encoding.PEM, cert_pem(ccert)),
            Slot(42, SlotType.CLIENT_KEY, Encoding.PEM, serialize_private_key(ckey)),
        ]
    )
    workdir = Path(tempfile.mkdtemp())
    signer_pub = workdir / "signer.pub"
    signer_pub.write_bytes(
        signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    server = TestServer(
        TLSMaterial((cert_pem(root.cert),), cert_pem(scert), serialize_private_key(skey))
    )
    server.start(lambda event: None)
    procs = []
    try:
        proc, url = start_stub(workdir, "plain")
        procs.append(proc)
        with provision.device.open(url, dialect="native") as dev:
            keygen = median_ms(runs, lambda: dev.keygen(7, "bench"))
            dev.write(creds)
            handshake = median_ms(
                runs, lambda: check_on_device(dev, "localhost", server.port, 42, timeout=5)
            )
            unsigned = median_ms(runs, lambda: dev.write(creds))
        proc, url = start_stub(workdir, "signed", "--signer", str(signer_pub))
        procs.append(proc)
        bundle = bundle_format.encode_signed(
            creds, lambda digest: bundle_format.BundleSignature(*sign_digest(signer, digest))
        )
        with provision.device.open(url, dialect="native") as dev:
            signed = median_ms(runs, lambda: dev.write_bundle(bundle))
    finally:
        server.close()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=5)
    return {
        "keygen": keygen,
        "verify": signed - unsigned,
        "signed": signed,
        "unsigned": unsigned,
        "handshake": handshake,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if not Path("/usr/include/mbedtls/x509_csr.h").exists():
        print("bench_stub_crypto: libmbedtls-dev not installed (apt install libmbedtls-dev)")
        return 0
    profile = PROFILES["default"]
    got = measure(args.runs)
    keygen, verify, handshake = got["keygen"], got["verify"], got["handshake"]
    signed, unsigned = got["signed"], got["unsigned"]
    print(f"device-side crypto, posix stub with mbedTLS (median of {args.runs})")
    modelled = f"modelled {profile.keygen_ms:6.1f} ms  ratio {keygen / profile.keygen_ms:.2f}"
    print(f"  keygen     {keygen:7.1f} ms   {modelled}")
    modelled = f"modelled {profile.verify_ms:6.1f} ms  ratio {verify / profile.verify_ms:.2f}"
    print(f"  verify     {verify:7.1f} ms   {modelled}")
    print(f"             (COMMIT signed {signed:.1f} ms, unsigned {unsigned:.1f} ms)")
    print(f"  handshake  {handshake:7.1f} ms   (TLS_CHECK round trip, TLS 1.2, P-256, loopback)")
    binary_sizes()
    return 0


if __name__ == "__main__":
    sys.exit(main())
