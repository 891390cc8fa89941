"""A small world of valid inputs (the committed test PKI, a CA with its key, a bundle, a spec,
a station config, a CSR, a registry, a simulated device's flash) and the hostile values the
battery swaps in for one of them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from hostile_tree import Command, Param
from typer.testing import CliRunner

from provision.cli.main import app

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
# Secrets of the world: none of them may appear in any output.
PASSWORD = "test-only-password"  # fixtures/device-encrypted.pw
PSK_HEX = (FIXTURES / "psk.hex").read_text().strip()


@dataclass(frozen=True)
class World:
    dir: Path

    def __truediv__(self, name: str) -> Path:
        return self.dir / name

    @property
    def port(self) -> str:
        return f"sim://native?flash={self.dir / 'dev.flash'}"

    def secrets(self) -> list[str]:
        """Strings that must never be printed: the password, the PSK, key bodies."""
        found = [PASSWORD, PSK_HEX]
        keys = ("device.key", "signer.key", "ca/ca.key", "device-encrypted.key")
        for key in keys:
            lines = (self.dir / key).read_text().splitlines()
            found += [line for line in lines if len(line) > 40 and "-----" not in line][:2]
        return found

    def tree(self) -> dict[str, tuple[int, int, bytes | None]]:
        """Every file under the world: size, mode and (small files) content, to prove a
        command created, removed or changed nothing."""
        out = {}
        for path in sorted(self.dir.rglob("*")):
            info = path.lstat()
            small = path.is_file() and not path.is_symlink() and info.st_size < 1 << 20
            out[str(path)] = (info.st_size, info.st_mode, path.read_bytes() if small else None)
        return out


def make_world(d: Path) -> World:
    for f in FIXTURES.iterdir():
        shutil.copy(f, d / f.name)
    (d / "spec.toml").write_text(
        'device_id = "dev-0001"\n[sec_tag.42]\nroot_ca = ["root-ca.pem"]\n'
        'client_cert = "device.pem"\nclient_key = "device.key"\n'
        '[sec_tag.7]\npsk = { hex_file = "psk.hex" }\npsk_identity = "dev-0001-psk"\n'
    )
    run = CliRunner().invoke
    signer = serialization.load_pem_private_key((d / "signer.key").read_bytes(), None)
    (d / "signer-encrypted.key").write_bytes(
        signer.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
    )
    for args in (
        [
            "pki",
            "init-ca",
            "--out-dir",
            d / "ca-encrypted",
            "--cn",
            "Hostile Encrypted CA",
            "--encrypt",
            "--password-file",
            d / "device-encrypted.pw",
        ],
        ["bundle", "pack", "--spec", d / "spec.toml", "--out", d / "typical.prvb"],
        ["pki", "init-ca", "--out-dir", d / "ca", "--cn", "Hostile Test CA", "--no-password"],
        ["pki", "csr", "--cn", "dev-9", "--out-dir", d / "csr", "--name", "dev-9"],
    ):
        result = run(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    (d / "station.toml").write_text(
        'station = "st-h"\nregistry = "line.sqlite"\nports = ["jig://hostile"]\n'
        '[ca]\ncert = "ca/ca.crt"\nkey = "ca/ca.key"\n'
    )
    from provision.registry import open_registry

    with open_registry(str(d / "reg.sqlite")):
        pass
    _checkpoint(d / "reg.sqlite")
    result = run(app, ["device", "write", "--port", f"sim://native?flash={d / 'dev.flash'}",
                       str(d / "typical.prvb")])  # fmt: skip
    assert result.exit_code == 0, result.output
    return World(d)


def _checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()


# A valid value for a parameter, by name: what a required option gets, and what an
# option's companions get so the hostile one is reached. Unknown names get no value.
def valid_value(world: World, cmd: Command, param: Param) -> str | None:
    name = param.key
    group = cmd.path[0]
    files = {
        "bundle": "typical.prvb",
        "spec": "spec.toml",
        "root_ca": "root-ca.pem",
        "root": "root-ca.pem",
        "client_cert": "device.pem",
        "cert": "device.pem",
        "client_key": "device.key",
        "key": "device.key",
        "chain": "root-ca.pem",
        "server_cert": "device.pem",
        "key_password_file": "device-encrypted.pw",
        "password_file": "device-encrypted.pw",
        "ca_password_file": "device-encrypted.pw",
        "sign_key_password_file": "device-encrypted.pw",
        "psk_hex_file": "psk.hex",
        "sign_key": "signer.key",
        "signer": "signer.pub.der",
        "pubkey": "signer.pub.der",
        "signer_cert": "root-ca.pem",
        "ca": "ca",
        "ca_cert": "ca/ca.crt",
        "ca_key": "ca/ca.key",
        "csr_file": "csr/dev-9.csr",
        "config": "station.toml",
    }
    if group == "testserver":
        files |= {"ca": "root-ca.pem", "cert": "device.pem", "key": "device.key"}
    if name in files:
        return str(world / files[name])
    values = {
        "port": world.port,
        "server": "127.0.0.1:9",
        "tag": "42",
        "san": "h.example",
        "cn": "hostile",
        "device_id": "dev-0001",
        "count": "1",
        "registry": str(world / "reg.sqlite"),
    }
    return values.get(name)


def hostile_files(d: Path) -> dict[str, str]:
    """Things that are not regular files, or cannot be opened, by class."""
    d.mkdir(exist_ok=True)
    fifo = d / "a-fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    (d / "a-dir").mkdir(exist_ok=True)
    return {
        "char-device": "/dev/zero",
        "fifo": str(fifo),
        "directory": str(d / "a-dir"),
        "missing": str(d / "no-such-file"),
        "name-too-long": str(d / ("n" * 300)),
    }
