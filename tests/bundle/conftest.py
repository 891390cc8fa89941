"""Fixtures for the bundle tests: the committed test PKI, bad inputs made at run time."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import generate_key, serialize_private_key

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "bundles"
PASSWORD = b"test-only-password"


@dataclass(frozen=True)
class Files:
    """Input files in one temporary directory (copies of the fixtures plus bad ones)."""

    dir: Path

    def __getattr__(self, name: str) -> Path:
        return self.dir / name.replace("_", "-").replace("-dot-", ".")

    def __truediv__(self, name: str) -> Path:
        return self.dir / name


@pytest.fixture(scope="session")
def bad_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files that parse but must fail the pre-flight check, made once per session."""
    d = tmp_path_factory.mktemp("bad-pki")
    root = create_root_ca("Bundle Test Root")
    past = datetime.now(UTC) - timedelta(days=400)
    expired_root = create_root_ca("Old Root", days=3650, now=past)
    key, expired = expired_root.issue_client("dev-old", days=30, now=past)
    (d / "expired-root.pem").write_bytes(cert_pem(expired_root.cert))
    (d / "expired.pem").write_bytes(cert_pem(expired))
    (d / "expired.key").write_bytes(serialize_private_key(key))
    # A "root" that is a leaf: not a CA.
    _, leaf = root.issue_client("not-a-ca")
    (d / "leaf-as-root.pem").write_bytes(cert_pem(leaf))
    (d / "other.key").write_bytes(serialize_private_key(generate_key()))
    return d


@pytest.fixture
def files(tmp_path: Path, bad_pki: Path) -> Files:
    d = tmp_path / "in"
    shutil.copytree(FIXTURES, d)
    for f in bad_pki.iterdir():
        shutil.copy(f, d / f.name)
    return Files(d)


@pytest.fixture
def run():
    """Invoke `provision` with CliRunner; exceptions are not swallowed into exit code 1."""
    from provision.cli.main import app

    runner = CliRunner()

    def invoke(*args: object, input: str | None = None, env: dict[str, str] | None = None):
        result = runner.invoke(app, [str(a) for a in args], input=input, env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke
