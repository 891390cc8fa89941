"""One small hierarchy of user-facing errors, each with a documented exit code.

The CLI catches `ProvisionError`, prints `error: <message>` on one line and exits with
`exit_code`. Messages must never contain key bytes or passwords.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the `provision` command; documented in README.md."""

    OK = 0
    WARNINGS = 1  # `check --strict` found warnings only
    ERRORS = 2  # `check`/`verify` found errors; also typer's code for a bad command line
    USAGE = 2  # a bad command line (an alias of ERRORS: typer/click exit 2 on usage errors)
    INPUT = 3  # an input file is missing, unreadable or not what it claims to be
    BUNDLE = 4  # a bundle is malformed, corrupted or its signature does not verify
    EXISTS = 5  # refused to overwrite an existing file without --force
    POLICY = 6  # a request was refused by policy (CSR checks, limits, unsupported slot)
    DEVICE = 7  # the device answered with an error
    LINK = 8  # the link failed: timeout, no answer, too many retransmissions
    REGISTRY = 9  # registry inconsistent or unreachable
    TLS = 10  # the mutual-TLS handshake failed
    HSM = 11  # the PKCS#11 token could not be used
    INTERNAL = 70  # a bug (EX_SOFTWARE): rerun with PROVISION_DEBUG=1 and report it
    INTERRUPTED = 130


# Longest user-supplied value echoed in a message: a 10,000-character --device-id or file
# name is shown as its start, an ellipsis, its end (a file's name) and its length.
CLIP_CHARS = 160


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """A user-supplied value as it may appear in a message: at most about `limit`
    characters, on one line (line ends and control characters escaped)."""
    text = str(value)
    if len(text) > limit:
        head = limit * 2 // 3
        shown = f"{text[:head]}…{text[-(limit - head - 1) :]}"
    else:
        shown = text
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in shown)
    return shown if len(text) <= limit else f"{shown} ({len(text)} characters)"


def one_line(message: str, limit: int = 8 * CLIP_CHARS) -> str:
    """An error message as the CLI prints it: one line, at most about `limit` characters.
    The last guard: values are clipped where they are put into messages (`clip`)."""
    text = " ".join(message.split("\n"))
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ProvisionError(Exception):
    """Base of all errors a user may see. `str(err)` is the one-line message."""

    exit_code: ExitCode = ExitCode.INPUT

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # A stable machine-readable code for --json output, e.g. "bundle.bad_crc".
        self.code = code


class InputError(ProvisionError):
    exit_code = ExitCode.INPUT


class UsageError(ProvisionError):
    """A bad command line the option parser could not see: a missing option that another
    option makes necessary, options that exclude each other, an unknown name."""

    exit_code = ExitCode.USAGE


class BundleError(ProvisionError):
    exit_code = ExitCode.BUNDLE


class OverwriteError(ProvisionError):
    exit_code = ExitCode.EXISTS


class PolicyError(ProvisionError):
    exit_code = ExitCode.POLICY


class CheckFailed(ProvisionError):
    exit_code = ExitCode.ERRORS


class VerifyFailed(CheckFailed):
    """A device's digests differ from the set written to it: the same outcome (exit 2,
    code device.verify_failed) from every entry point."""

    def __init__(self, message: str, *, code: str | None = "device.verify_failed") -> None:
        super().__init__(message, code=code)


class StoreFull(PolicyError):
    """The device's credential store has no room for the set: the same outcome (exit 6,
    code device.store_full) from every dialect."""

    def __init__(self, message: str, *, code: str | None = "device.store_full") -> None:
        super().__init__(message, code=code)


class DeviceError(ProvisionError):
    exit_code = ExitCode.DEVICE


class StrayLeft(DeviceError):
    """A copy of a set's content the line stored under a key nobody named (a garbled text
    command header) stays on the device after the write: the set is written and verified,
    but a secret may sit where nobody looks."""

    def __init__(self, message: str, *, code: str | None = "device.stray_left") -> None:
        super().__init__(message, code=code)


class LinkError(ProvisionError):
    exit_code = ExitCode.LINK


class RegistryError(ProvisionError):
    exit_code = ExitCode.REGISTRY


class TLSCheckError(ProvisionError):
    exit_code = ExitCode.TLS


class HSMError(ProvisionError):
    exit_code = ExitCode.HSM
