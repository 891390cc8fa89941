"""Conformance suite fixtures: one suite, any target.

    pytest hil --port sim                         # the Python simulator (default)
    pytest hil --port posix                       # the C stub as a host process
    pytest hil --port qemu                        # the C stub on mps2-an385 under QEMU
    pytest hil --port /dev/ttyACM0                # a real board (target "board")
    pytest hil --port socket://127.0.0.1:5555 --target qemu   # a QEMU you booted yourself

--port may also come from PROVISION_HIL_PORT, --target from PROVISION_HIL_TARGET. What each
target can do (power cut, restart, reconnect) is in hil/targets.toml; a test needing what the
target lacks is skipped with the reason. PROVISION_REQUIRE_TOOLCHAIN=1 turns "cannot run
here" skips into failures (CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import provision.device
from provision.errors import DeviceError
from provision.link import messages as m

from .raw import RawLink
from .targets import Target, TargetUnavailable, resolve


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop conformance")
    group.addoption("--port", default=None, help="target name from hil/targets.toml or a URL")
    group.addoption("--target", default=None, help="what the --port URL is (targets.toml name)")
    group.addoption(
        "--hil-timeout",
        type=float,
        default=None,
        help="per-request timeout (s); default: the target's `timeout` in targets.toml, else 3",
    )
    group.addoption(
        "--hil-cut",
        choices=("bisect", "quick"),
        default=os.environ.get("PROVISION_HIL_CUT", "bisect"),
        help="power-cut search: bisect to the exact commit byte (default) or quick (x16 steps)",
    )


def unavailable(reason: str) -> None:
    if os.environ.get("PROVISION_REQUIRE_TOOLCHAIN") == "1":
        pytest.fail(f"required target cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    port = request.config.getoption("--port") or os.environ.get("PROVISION_HIL_PORT") or "sim"
    name = request.config.getoption("--target") or os.environ.get("PROVISION_HIL_TARGET")
    try:
        t = resolve(port, name, tmp_path_factory.mktemp("hil"))
        t.check_available()
        t.build()
    except TargetUnavailable as err:
        unavailable(str(err))
    yield t
    t.stop()


@pytest.fixture(scope="session")
def url(target: Target) -> str:
    try:
        return target.start()
    except TargetUnavailable as err:
        unavailable(str(err))
        raise


@pytest.fixture(scope="session")
def hil_timeout(request: pytest.FixtureRequest, target: Target) -> float:
    given = request.config.getoption("--hil-timeout")
    return float(given if given is not None else target.spec.get("timeout", 3.0))


def wipe(dev: provision.device.Device) -> None:
    try:
        dev.delete(None)
    except DeviceError as err:
        if err.code != "device.not_found":  # an empty store has nothing to delete
            raise


@pytest.fixture
def device(url: str, hil_timeout: float) -> Iterator[provision.device.Device]:
    """An open device whose store starts empty."""
    dev = provision.device.open(url, dialect="native", timeout=hil_timeout)
    wipe(dev)
    try:
        yield dev
    finally:
        dev.close()


@pytest.fixture
def raw(url: str, hil_timeout: float) -> Iterator[RawLink]:
    link = RawLink(url, hil_timeout)
    link.hello()
    link.request(m.Delete(m.DeleteScope.ALL, 0, 0, m.DELETE_ALL_GUARD))  # start empty
    try:
        yield link
    finally:
        link.close()


@pytest.fixture
def needs(target: Target):  # type: ignore[no-untyped-def]
    """needs("power_cut") skips (with the reason) unless the target can do it."""

    def check(what: str) -> None:
        if not getattr(target, what if what != "restart" else "restart_supported"):
            pytest.skip(f"target {target.name} cannot {what.replace('_', ' ')} (hil/targets.toml)")

    return check


@pytest.fixture
def cut_mode(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--hil-cut"))
