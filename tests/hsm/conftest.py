"""SoftHSM2 fixtures: a token with a fresh signing key, made by .ci/services/softhsm.sh.

Uses PROVISION_TEST_HSM_URI/SOFTHSM2_CONF when CI exported them; otherwise starts a token
itself when softhsm2-util is installed. Without SoftHSM2 the `softhsm` tests skip with the
reason, or fail when PROVISION_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HSM_SCRIPT = REPO / ".ci" / "services" / "softhsm.sh"
_VARS = ("SOFTHSM2_CONF", "PROVISION_PKCS11_MODULE", "PROVISION_TEST_HSM_URI")


def skip_or_fail(reason: str) -> None:
    if os.environ.get("PROVISION_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PROVISION_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def start_token() -> tuple[dict[str, str] | None, str]:
    """(environment of a fresh token, "") or (None, why not)."""
    if shutil.which("softhsm2-util") is None:
        return None, "SoftHSM2 is not installed (apt-get install softhsm2)"
    try:
        pkcs11_ok = subprocess.run([sys.executable, "-c", "import pkcs11"], check=False).returncode
    except OSError as err:
        return None, str(err)
    if pkcs11_ok != 0:
        return None, "python-pkcs11 is not installed (pip install 'provision[hsm]')"
    env = {k: v for k, v in os.environ.items() if k != "PROVISION_TEST_HSM_DIR"}
    env["PYTHON"] = sys.executable
    try:
        out = subprocess.run(
            ["bash", str(HSM_SCRIPT), "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError) as err:
        stderr = getattr(err, "stderr", "") or ""
        return None, f"could not create a SoftHSM2 token: {err} {stderr.strip()[-300:]}"
    values = {}
    for line in out.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = value.strip("'")
    return values, ""


@pytest.fixture(scope="session")
def hsm_token() -> Iterator[tuple[dict[str, str] | None, str]]:
    if os.environ.get("PROVISION_TEST_HSM_URI") and os.environ.get("SOFTHSM2_CONF"):
        yield {k: os.environ[k] for k in _VARS if k in os.environ}, ""
        return
    values, reason = start_token()
    if values is None:
        yield None, reason
        return
    saved = {k: os.environ.get(k) for k in _VARS}
    os.environ.update({k: values[k] for k in _VARS})
    try:
        yield values, ""
    finally:
        from provision.pki.hsm import close_sessions

        close_sessions()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        subprocess.run(
            ["bash", str(HSM_SCRIPT), "stop", values["PROVISION_TEST_HSM_DIR"]],
            capture_output=True,
            check=False,
        )


@pytest.fixture
def hsm_uri(hsm_token: tuple[dict[str, str] | None, str]) -> str:
    """The RFC 7512 URI of the token's EC P-256 signing key (PIN via pin-source file)."""
    values, reason = hsm_token
    if values is None:
        skip_or_fail(reason)
    assert values is not None
    return values["PROVISION_TEST_HSM_URI"]
