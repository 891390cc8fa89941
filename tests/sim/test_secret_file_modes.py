"""A simulated device's flash holds plaintext keys: the file is 0600 whatever the umask, like
every other file the tool creates that can hold a secret (pki.files.open_private)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import provision.device
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.pki.files import make_private_dirs, open_private
from provision.sim.profile import PROFILES
from provision.sim.store import open_store


@pytest.fixture
def no_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_flash_file_is_created_private_under_umask_000(tmp_path: Path, no_umask) -> None:
    path = tmp_path / "dev.flash"
    store = open_store(PROFILES["small"], path)
    store.commit({(1, SlotType.CLIENT_KEY): b"k" * 32})
    assert _mode(path) == 0o600


def test_sim_url_flash_holding_a_key_is_private_under_umask_000(tmp_path: Path, no_umask) -> None:
    flash = tmp_path / "dev.flash"
    key = Slot(7, SlotType.PSK, Encoding.RAW, bytes(range(32)))
    with provision.device.open(f"sim://native?flash={flash}", dialect="native") as dev:
        dev.write(CredentialSet((key,)))
    assert bytes(range(32)) in flash.read_bytes()  # the sim keeps it in plaintext, as boards do
    assert _mode(flash) == 0o600


def test_an_existing_flash_file_keeps_its_mode(tmp_path: Path, no_umask) -> None:
    path = tmp_path / "dev.flash"
    open_store(PROFILES["small"], path)
    path.chmod(0o640)  # the user's choice for a file they made
    open_store(PROFILES["small"], path).commit({(1, SlotType.ROOT_CA): b"r" * 40})
    assert _mode(path) == 0o640


def test_private_dirs_and_files_ignore_a_umask_that_takes_owner_bits(tmp_path: Path) -> None:
    old = os.umask(0o277)  # even the owner's write bit masked
    try:
        created = make_private_dirs(tmp_path / "a" / "b")
        fd = open_private(tmp_path / "a" / "b" / "secret")
        os.close(fd)
    finally:
        os.umask(old)
    assert created == [tmp_path / "a" / "b", tmp_path / "a"]
    assert _mode(tmp_path / "a") == _mode(tmp_path / "a" / "b") == 0o700
    assert _mode(tmp_path / "a" / "b" / "secret") == 0o600
    with pytest.raises(FileExistsError):  # never opens (and so never truncates) another's file
        open_private(tmp_path / "a" / "b" / "secret")
