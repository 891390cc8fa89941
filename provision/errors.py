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


class LinkError(ProvisionError):
    exit_code = ExitCode.LINK


class RegistryError(ProvisionError):
    exit_code = ExitCode.REGISTRY


class TLSCheckError(ProvisionError):
    exit_code = ExitCode.TLS


class HSMError(ProvisionError):
    exit_code = ExitCode.HSM
