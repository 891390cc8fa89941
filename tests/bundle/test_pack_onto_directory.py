"""`bundle pack --out FOLDER`: bad input (exit 3) with or without --force; it said 'file
exists; use --force', and --force then failed anyway."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import ExitCode


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_pack_onto_a_folder_is_bad_input(run, files, tmp_path: Path, force) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    result = run("bundle", "pack", "--tag", 42, "--root-ca", files.root_ca_dot_pem,
                 "--out", folder, *force)  # fmt: skip
    assert result.exit_code == ExitCode.INPUT
    assert result.output.strip() == f"error: {folder}: is a directory; give the bundle file's name"
    assert list(folder.iterdir()) == []
