"""`bundle unpack` names its folder --out-dir/-o like the pki commands; --dir/-d still work."""

from __future__ import annotations

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
