"""`registry export -o FOLDER` is bad input (exit 3), not an internal error after writing."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import entry

from provision.errors import ExitCode
from provision.registry import open_registry


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_export_onto_a_folder_is_bad_input(cli, registry_url: str, tmp_path: Path, force) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-dir", serial=reg.allocate_serial()))
    folder = tmp_path / "exports"
    folder.mkdir()
    result = cli(["registry", "export", "-o", folder, "-r", registry_url, *force])
    assert result.exit_code == ExitCode.INPUT, result.output
    assert result.output.strip() == f"error: {folder}: is a directory; give the export file's name"
    assert list(folder.iterdir()) == [] and list(tmp_path.glob(".exports.*")) == []
