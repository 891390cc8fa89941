"""The distribution a user installs: `python -m build` makes a wheel and an sdist; the wheel,
installed into a fresh virtualenv, runs the README tour's first commands from a folder that
has nothing to do with the source tree (so nothing is imported from the checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # An isolated build, as a release makes it: the backend comes from the package index.
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, f"{pattern}: {found}"
    return found[0]


@pytest.mark.slow
def test_wheel_carries_license_typing_marker_and_metadata(dist):
    wheel = _one(dist, "provision_x509-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = zf.read(meta_name).decode()
        entry = zf.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    assert "provision/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Name: provision-x509" in meta
    assert "License-Expression: Apache-2.0" in meta
    assert "Project-URL: Changelog" in meta
    assert "provision = provision.cli.main:run" in entry


@pytest.mark.slow
def test_sdist_carries_docs_changelog_and_tests(dist):
    sdist = _one(dist, "provision_x509-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for name in ("LICENSE", "CHANGELOG.md", "docs/pki.md", "tests/conftest.py", "pyproject.toml"):
        assert name in names, name


@pytest.mark.slow
def test_wheel_in_fresh_venv_runs_the_tour_from_an_unrelated_folder(dist, tmp_path):
    wheel = _one(dist, "provision_x509-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run(
        [str(bindir / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    work = tmp_path / "somewhere-else"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"

    def provision(*args: str) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            ["provision", *args], cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, f"provision {' '.join(args)}: {res.stderr}"
        return res

    # The installed copy, not the checkout, answers.
    where = subprocess.run(
        [str(bindir / "python"), "-c", "import provision; print(provision.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(env_dir) in where
    assert provision("--version").stdout.startswith("provision ")

    provision("pki", "init-ca", "--no-password", "--out-dir", "ca", "--cn", "Acme Root CA")
    provision("pki", "issue", "client", "--ca", "ca", "--out-dir", "dev", "--device-id", "dev-0001")
    provision(
        "bundle", "pack", "--tag", "42", "--root-ca", "ca/ca.crt",
        "--client-cert", "dev/dev-0001.crt", "--client-key", "dev/dev-0001.key",
        "--device-id", "dev-0001", "--out", "dev-0001.prvb",
    )  # fmt: skip
    flash = work / "dev.flash"
    provision("device", "write", "--port", f"sim://native?flash={flash}", "dev-0001.prvb")
    listed = provision("device", "list", "--port", f"sim://native?flash={flash}", "--json")
    assert "42" in listed.stdout


def test_ci_floors_are_the_lower_bounds_pyproject_declares():
    import re
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    for extra in ("hsm", "postgres", "esp"):
        declared += [Requirement(r) for r in project["optional-dependencies"][extra]]
    floors = {}
    for line in (ROOT / ".ci/floors.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            floors[name] = version
    for req in declared:
        lows = [s.version for s in req.specifier if s.operator == ">="]
        assert len(lows) == 1, f"{req}: one lower bound"
        assert req.name in floors, f"{req.name} has no line in .ci/floors.txt"
        assert re.sub(r"(\.0)+$", "", floors[req.name]) == re.sub(r"(\.0)+$", "", lows[0]), req
