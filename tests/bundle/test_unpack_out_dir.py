"""`bundle unpack` names its folder --out-dir/-o like the pki commands; --dir/-d still work."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


@pytest.mark.parametrize("option", ["--out-dir", "-o", "--dir", "-d"])
def test_unpack_folder_option_names(run, files, tmp_path: Path, option: str) -> None:
    bundle = tmp_path / "b.prvb"
    assert run("bundle", "pack", "--tag", 42, "--root-ca", files.root_ca_dot_pem,
               "--out", bundle).exit_code == 0  # fmt: skip
    out = tmp_path / "unpacked"
    result = run("bundle", "unpack", bundle, option, out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["bundle.toml", "tag42-root_ca.der"]


def test_unpack_creates_its_folder_private_under_umask_000(run, files, tmp_path: Path) -> None:
    bundle = tmp_path / "b.prvb"
    assert run("bundle", "pack", "--tag", 42, "--root-ca", files.root_ca_dot_pem,
               "--client-cert", files.device_dot_pem, "--client-key", files.device_dot_key,
               "--out", bundle).exit_code == 0  # fmt: skip
    out = tmp_path / "new" / "unpacked"
    old = os.umask(0)
    try:
        result = run("bundle", "unpack", bundle, "-o", out)
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "tag42-client_key.der").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "tag42-root_ca.der").stat().st_mode) == 0o644
