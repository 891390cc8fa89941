"""`registry export` writes to --out like `bundle pack`; --output and -o still work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_helpers import entry

from provision.registry import open_registry


@pytest.mark.parametrize("option", ["--out", "--output", "-o"])
def test_export_output_option_names(cli, registry_url: str, tmp_path: Path, option) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-out", serial=reg.allocate_serial()))
    out = tmp_path / "devices.json"
    result = cli(["registry", "export", "--format", "json", option, out, "-r", registry_url])
    assert result.exit_code == 0, result.output
    assert [d["device_id"] for d in json.loads(out.read_text())] == ["uid-out"]
