"""Writing PKI outputs: all or nothing, keys 0600, no silent overwrite.

Several files belong together (a key and its certificate). They are first written to
temporary files beside their destinations; only when every one is on disk are they moved
into place, so a failure leaves no half set behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import InputError, OverwriteError

KEY_MODE = 0o600
PUBLIC_MODE = 0o644
# `-` as a file name: standard input for a command's one input, standard output for its one
# output (`bundle pack -o - | ...`, `... | bundle inspect -`).
STDIO = "-"


def is_stdio(path: Path | str) -> bool:
    return str(path) == STDIO


@dataclass(frozen=True)
class OutputFile:
    path: Path
    data: bytes = field(repr=False)
    mode: int = PUBLIC_MODE
    # Keys: never replaced without --force. Certificates follow the same rule so that a
    # certificate is never silently separated from the key it was issued for.
    is_key: bool = False


def read_input(path: Path, what: str) -> bytes:
    """Read an input file (`-`: standard input); a missing or unreadable file is a one-line
    InputError."""
    if is_stdio(path):
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a {what} file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} file: {err.strerror}") from None


def _check_destination(out: OutputFile, force: bool) -> None:
    path = out.path
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name")
    if path.exists() and not force:
        what = "key file" if out.is_key else "file"
        raise OverwriteError(f"{path}: {what} exists; use --force to overwrite")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{existing}: not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{existing}: folder is not writable")


def _make_parents(outputs: list[OutputFile]) -> list[Path]:
    """Create missing output folders (0700: they will hold keys); return them, deepest first."""
    created: list[Path] = []
    for out in outputs:
        missing: list[Path] = []
        parent = out.path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            folder.mkdir(mode=0o700)
            created.append(folder)
    return created[::-1]


def check_outputs(outputs: list[OutputFile], *, force: bool) -> None:
    """Everything write_outputs would refuse, found without writing: callers that make
    something irreversible first (a key in a device) check their outputs before."""
    if any(is_stdio(o.path) for o in outputs):
        if len(outputs) != 1:
            raise InputError("- (standard output) takes a single output file")
        return
    paths = [o.path.resolve() for o in outputs]
    if len(set(paths)) != len(paths):
        raise InputError("two outputs would be written to the same file")
    for out in outputs:
        _check_destination(out, force)


def write_outputs(outputs: list[OutputFile], *, force: bool) -> None:
    """Write every file or none. Existing files are refused unless `force`."""
    check_outputs(outputs, force=force)
    if any(is_stdio(o.path) for o in outputs):
        sys.stdout.buffer.write(outputs[0].data)
        sys.stdout.buffer.flush()
        return
    staged: list[tuple[str, OutputFile]] = []
    placed: list[Path] = []
    created: list[Path] = []
    try:
        created = _make_parents(outputs)
        for out in outputs:
            fd, tmp = tempfile.mkstemp(prefix=f".{out.path.name}.", dir=out.path.parent)
            staged.append((tmp, out))
            # mkstemp creates 0600, so a key is never readable by others, not even briefly.
            with os.fdopen(fd, "wb") as fh:
                fh.write(out.data)
                fh.flush()
                os.fsync(fh.fileno())
            if out.mode != KEY_MODE:
                os.chmod(tmp, out.mode)
        for tmp, out in staged:
            if force:
                os.replace(tmp, out.path)
                continue
            # link() fails if the destination appeared since the check: no overwrite race.
            try:
                os.link(tmp, out.path)
            except FileExistsError:
                raise OverwriteError(f"{out.path}: file exists; use --force to overwrite") from None
            placed.append(out.path)
    except OSError as err:
        _undo(staged, placed, created)
        raise InputError(f"cannot write {err.filename or 'output'}: {err.strerror}") from None
    except BaseException:
        _undo(staged, placed, created)
        raise
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _undo(staged: list[tuple[str, OutputFile]], placed: list[Path], created: list[Path]) -> None:
    for path in [*placed, *(Path(tmp) for tmp, _ in staged)]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    for folder in created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def write_private_key(path: Path | str, data: bytes, force: bool) -> None:
    """Write one private key atomically with mode 0600; refuse to overwrite without force."""
    write_outputs([OutputFile(Path(path), data, KEY_MODE, is_key=True)], force=force)
