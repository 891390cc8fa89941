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

import pytest
from service_scripts import skip_or_fail, start_service, stop_service

_VARS = ("SOFTHSM2_CONF", "PROVISION_PKCS11_MODULE", "PROVISION_TEST_HSM_URI")


def start_token() -> tuple[dict[str, str] | None, str]:
    """(environment of a fresh token, "") or (None, why not)."""
    if shutil.which("softhsm2-util") is None:
        return None, "SoftHSM2 is not installed (apt-get install softhsm2)"
    try:
        pkcs11_ok = subprocess.run([sys.executable, "-c", "import pkcs11"], check=False).returncode
    except OSError as err:
        return None, str(err)
    if pkcs11_ok != 0:
        return None, "python-pkcs11 is not installed (pip install 'provision-x509[hsm]')"
    env = {k: v for k, v in os.environ.items() if k != "PROVISION_TEST_HSM_DIR"}
    env["PYTHON"] = sys.executable
    return start_service("softhsm.sh", "create a SoftHSM2 token", env)


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
        stop_service("softhsm.sh", values["PROVISION_TEST_HSM_DIR"])


@pytest.fixture
def hsm_uri(hsm_token: tuple[dict[str, str] | None, str]) -> str:
    """The RFC 7512 URI of the token's EC P-256 signing key (PIN via pin-source file)."""
    values, reason = hsm_token
    if values is None:
        skip_or_fail(reason)
    assert values is not None
    return values["PROVISION_TEST_HSM_URI"]
