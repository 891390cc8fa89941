"""The docs run as written: every ```sh block of README.md and docs/*.md, in order, in a fresh
folder per document, against simulators. A block that needs hardware, a network or runs until
Ctrl-C says so in a `<!-- docs-test: skip (why) -->` line just before it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?P<before>[^\n]*)\n```sh\n(?P<body>.*?)\n```", re.S)
SKIP = re.compile(r"<!-- docs-test: skip \(.+\) -->")


def runnable_blocks(text: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(text) if not SKIP.search(m["before"])]


def _with_blocks() -> list[Path]:
    return [doc for doc in DOCS if runnable_blocks(doc.read_text(encoding="utf-8"))]


def test_skipped_blocks_say_why():
    for doc in DOCS:
        for marker in re.findall(r"<!-- docs-test:[^>]*-->", doc.read_text(encoding="utf-8")):
            assert SKIP.fullmatch(marker), f"{doc.name}: {marker}"


@pytest.mark.slow
@pytest.mark.parametrize("doc", _with_blocks(), ids=lambda p: p.name)
def test_doc_shell_blocks_run_as_written(doc: Path, tmp_path: Path):
    script = "\n".join(runnable_blocks(doc.read_text(encoding="utf-8")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
    env["PROVISION_CONFIG"] = ""  # no provision.toml of the developer's steers the run
    env["HOME"] = str(tmp_path / "home")
    # Background jobs the docs start (servers, simulators) end with the script.
    wrapped = f"set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}\n"
    res = subprocess.run(
        ["bash", "-c", wrapped],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, (
        f"{doc.name}: exit {res.returncode}\n--- stdout\n{res.stdout[-3000:]}\n"
        f"--- stderr\n{res.stderr[-3000:]}"
    )
