"""Fixtures for the ESP32 tests: the committed test PKI, Espressif's tools from pip."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "esp_secure_cert"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def espressif_tool() -> Path:
    """configure_esp_secure_cert.py of the esp-secure-cert-tool package (test extra)."""
    script = BIN / "configure_esp_secure_cert.py"
    if not script.exists():
        pytest.skip("esp-secure-cert-tool is not installed (pip install -e '.[test]')")
    return script
