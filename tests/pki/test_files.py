from __future__ import annotations

import os
import stat

import pytest

from provision.errors import InputError, OverwriteError
from provision.pki import files
from provision.pki.files import KEY_MODE, OutputFile, read_input, write_outputs


def test_all_or_nothing_when_one_destination_exists(tmp_path) -> None:
    (tmp_path / "b.crt").write_bytes(b"old")
    outs = [
        OutputFile(tmp_path / "a.key", b"k", KEY_MODE, True),
        OutputFile(tmp_path / "b.crt", b"c"),
    ]
    with pytest.raises(OverwriteError):
        write_outputs(outs, force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.crt"]
    assert (tmp_path / "b.crt").read_bytes() == b"old"


def test_file_appearing_during_write_is_not_overwritten(tmp_path, monkeypatch) -> None:
    # Simulate another process creating b.crt between the check and the final link.
    monkeypatch.setattr(files, "_check_destination", lambda out, force: None)
    (tmp_path / "b.crt").write_bytes(b"theirs")
    outs = [
        OutputFile(tmp_path / "a.key", b"k", KEY_MODE, True),
        OutputFile(tmp_path / "b.crt", b"c"),
    ]
    with pytest.raises(OverwriteError):
        write_outputs(outs, force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.crt"]
    assert (tmp_path / "b.crt").read_bytes() == b"theirs"


def test_modes_and_force(tmp_path) -> None:
    outs = [
        OutputFile(tmp_path / "a.key", b"k", KEY_MODE, True),
        OutputFile(tmp_path / "b.crt", b"c"),
    ]
    write_outputs(outs, force=False)
    assert stat.S_IMODE(os.stat(tmp_path / "a.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "b.crt").st_mode) == 0o644
    write_outputs([OutputFile(tmp_path / "b.crt", b"new")], force=True)
    assert (tmp_path / "b.crt").read_bytes() == b"new"


def test_same_destination_twice(tmp_path) -> None:
    with pytest.raises(InputError, match="same file"):
        write_outputs(
            [OutputFile(tmp_path / "x", b"1"), OutputFile(tmp_path / "x", b"2")], force=True
        )
    assert list(tmp_path.iterdir()) == []


def test_read_input_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_input(tmp_path / "missing.pem", "certificate")
    with pytest.raises(InputError, match="is a directory"):
        read_input(tmp_path, "certificate")


def test_missing_output_folders_are_created_private(tmp_path) -> None:
    key = tmp_path / "new" / "nested" / "a.key"
    write_outputs([OutputFile(key, b"k", KEY_MODE, True)], force=False)
    assert key.read_bytes() == b"k"
    for folder in (tmp_path / "new", tmp_path / "new" / "nested"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_folders_created_for_a_failed_write_are_removed(tmp_path, monkeypatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(InputError, match="No space left"):
        write_outputs([OutputFile(tmp_path / "new" / "a.key", b"k", KEY_MODE, True)], force=False)
    assert list(tmp_path.iterdir()) == []


def test_output_under_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "plain").write_bytes(b"x")
    with pytest.raises(InputError, match="not a directory"):
        write_outputs([OutputFile(tmp_path / "plain" / "sub" / "a.key", b"k")], force=False)
