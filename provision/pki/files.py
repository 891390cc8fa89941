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

from provision.errors import InputError, OverwriteError, clip
from provision.inputs import read_input

__all__ = ["KEY_MODE", "PUBLIC_MODE", "OutputFile", "read_input", "write_outputs"]

KEY_MODE = 0o600
PUBLIC_MODE = 0o644
PRIVATE_DIR_MODE = 0o700


def make_private_dirs(path: Path, created: list[Path] | None = None) -> list[Path]:
    """Create `path` and its missing parents as 0700 whatever the umask (they may come to
    hold keys); return the folders created, deepest first. Each is also put at the front of
    `created` as soon as it exists, so that a failure half-way (a name too long for the
    file system) can still remove the ones made before. An existing folder is left as it
    is: it is the user's."""
    made = [] if created is None else created
    missing: list[Path] = []
    folder = Path(path)
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    new: list[Path] = []
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR_MODE)
        made.insert(0, folder)
        new.insert(0, folder)
        # mkdir's mode is masked by the umask, and a umask may also take the owner's bits.
        os.chmod(folder, PRIVATE_DIR_MODE)
    return new


def open_private(path: Path | str, flags: int = os.O_RDWR) -> int:
    """Open `path` for writing, creating it 0600 whatever the umask if it is missing: for
    any file that may hold a key, a password or a PSK (a simulated device's flash). A file
    that exists keeps its mode."""
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, KEY_MODE)
    try:
        os.fchmod(fd, KEY_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


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
    # A name the file system cannot hold fails only when written: after a device made a key,
    # that key's CSR would be lost. Checked here, before anything happens.
    try:
        longest = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        return
    for part in path.relative_to(existing).parts:
        if len(os.fsencode(part)) > longest:
            raise InputError(f"{clip(path)}: file name too long (at most {longest} bytes)")


def check_destinations(paths: list[Path | None], *, force: bool) -> None:
    """Refuse, before any work, an output that write_outputs would refuse or fail to write
    (the same file twice, a directory, an existing file without force, a missing parent
    that is a file, a name too long)."""
    check_outputs([OutputFile(Path(p), b"") for p in paths if p is not None], force=force)


def _make_parents(outputs: list[OutputFile], created: list[Path]) -> None:
    """Create missing output folders (0700: they will hold keys), each recorded in `created`
    (deepest first) as soon as it exists: a failure half-way (a name too long for the file
    system) must still remove the folders made before it."""
    for out in outputs:
        make_private_dirs(out.path.parent, created)


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
        _make_parents(outputs, created)
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
        raise InputError(f"cannot write {clip(err.filename or 'output')}: {err.strerror}") from None
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
