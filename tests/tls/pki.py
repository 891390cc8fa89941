"""Test credentials made at run time with provision.pki (no key is committed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import generate_key, serialize_private_key

PASSWORD = b"correct horse battery staple"


@dataclass(frozen=True)
class Pair:
    cert: bytes
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class Pki:
    root: bytes
    other_root: bytes  # a CA that anchors nothing here
    server: Pair  # SAN localhost, 127.0.0.1, issued by root
    client: Pair  # CN device-1, issued by root
    client_encrypted: Pair  # same cert as client, key encrypted with PASSWORD
    expired_client: Pair
    foreign_client: Pair  # CN device-foreign, issued by other_root
    stranger_key: bytes = field(repr=False)  # a key that belongs to no certificate here

    def write(self, directory: Path) -> dict[str, Path]:
        """Every item as a file (keys 0600), for openssl and the CLI."""
        items = {
            "root": self.root,
            "other_root": self.other_root,
            "server_cert": self.server.cert,
            "server_key": self.server.key,
            "client_cert": self.client.cert,
            "client_key": self.client.key,
            "client_key_enc": self.client_encrypted.key,
            "expired_cert": self.expired_client.cert,
            "expired_key": self.expired_client.key,
            "foreign_cert": self.foreign_client.cert,
            "foreign_key": self.foreign_client.key,
            "stranger_key": self.stranger_key,
            "password": PASSWORD + b"\n",
        }
        paths = {}
        for name, data in items.items():
            path = directory / f"{name}.pem"
            path.write_bytes(data)
            if "key" in name or name == "password":
                path.chmod(0o600)
            paths[name] = path
        return paths


def _pem_key(key, password: bytes | None = None) -> bytes:
    return serialize_private_key(key, password=password)


def make_pki() -> Pki:
    root = create_root_ca("Provision Test Root", organization="provision tests")
    other = create_root_ca("Some Other Root", organization="elsewhere")
    skey, scert = root.issue_server(["localhost", "127.0.0.1"])
    ckey, ccert = root.issue_client("device-1", organization="provision tests")
    long_ago = datetime.now(UTC) - timedelta(days=400)
    ekey, ecert = root.issue_client("device-expired", days=30, now=long_ago)
    fkey, fcert = other.issue_client("device-foreign")
    return Pki(
        root=cert_pem(root.cert),
        other_root=cert_pem(other.cert),
        server=Pair(cert_pem(scert), _pem_key(skey)),
        client=Pair(cert_pem(ccert), _pem_key(ckey)),
        client_encrypted=Pair(cert_pem(ccert), _pem_key(ckey, PASSWORD)),
        expired_client=Pair(cert_pem(ecert), _pem_key(ekey)),
        foreign_client=Pair(cert_pem(fcert), _pem_key(fkey)),
        stranger_key=_pem_key(generate_key()),
    )
