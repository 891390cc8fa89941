"""scripts/demo.sh (what `make demo` runs) ends with the mutual-TLS handshake accepted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).parents[2] / "scripts" / "demo.sh"


@pytest.mark.slow
def test_demo_script_runs_clean_and_ends_with_the_handshake(tmp_path):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(["bash", str(DEMO)], env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-2000:]
    steps = re.findall(r"==> (\d)/7", out)
    assert steps == [str(i) for i in range(1, 8)]
    assert "device matches" in out
    # The `device list` step: one row per slot of sec_tag 42, with sizes.
    for slot in ("root_ca", "client_cert", "client_key"):
        assert re.search(rf"\b42\s+{slot}\s+\d+\s", out), slot
    assert "mutual TLS handshake accepted" in out
    assert "test server: accepted 127.0.0.1:" in out and "CN=device-0001" in out
    assert "PRIVATE KEY" not in out
    # The work directory is gone and no background process outlived the script.
    assert list(tmp_path.iterdir()) == []
    assert _processes_under(tmp_path) == []


def _processes_under(directory: Path) -> list[str]:
    """PIDs whose working directory is inside `directory` (Linux /proc)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(directory)):
            found.append(proc.name)
    return found
