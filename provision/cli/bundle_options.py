"""What the command line says about a credential set: `--spec` or item options, signing-key
and secret options, as `bundle pack`, `device write` and `check` take them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from provision.bundle.spec import (
    DEFAULT_ENCODING,
    PackSources,
    SecretSource,
    TagSources,
    load_spec,
)
from provision.errors import InputError
from provision.packing import SignerSource


def sources_from_options(
    *,
    sec_tag: int | None,
    root_ca: Sequence[Path],
    client_cert: Path | None,
    client_key: Path | None,
    key_password: SecretSource | None,
    psk: SecretSource | None,
    psk_identity: str | None,
    device_id: str | None,
    encoding: str,
) -> PackSources:
    """The one-tag PackSources the command-line options describe."""
    if sec_tag is None:
        raise InputError("--tag is required with item options (or use --spec)")
    tag = TagSources(
        sec_tag=sec_tag,
        root_ca=tuple(root_ca),
        client_cert=client_cert,
        client_key=client_key,
        key_password=key_password,
        psk=psk,
        psk_identity=psk_identity.encode() if psk_identity else None,
    )
    return PackSources((tag,), device_id=device_id, encoding=encoding)


# The command-line options that name items one by one (what --spec replaces).
ITEM_OPTIONS = (
    "--tag",
    "--root-ca",
    "--client-cert",
    "--client-key",
    "--key-password-file",
    "--key-password-env",
    "--psk-hex-file",
    "--psk-hex-env",
    "--psk-identity",
)


def sources_from_cli(
    *,
    spec: Path | None,
    sec_tag: int | None,
    root_ca: Sequence[Path],
    client_cert: Path | None,
    client_key: Path | None,
    key_password: SecretSource | None,
    psk: SecretSource | None,
    psk_identity: str | None,
    device_id: str | None,
    encoding: str | None,
) -> PackSources:
    """What `bundle pack` and `device write` were given: a spec file or item options, not both.
    --device-id and --encoding apply to either."""
    if spec is not None:
        items = [sec_tag is not None, root_ca, client_cert, client_key, key_password, psk,
                 psk_identity]  # fmt: skip
        if any(items):
            raise InputError(f"--spec cannot be combined with {', '.join(ITEM_OPTIONS)}")
        return override_spec(load_spec(spec), device_id=device_id, encoding=encoding)
    return sources_from_options(
        sec_tag=sec_tag,
        root_ca=root_ca,
        client_cert=client_cert,
        client_key=client_key,
        key_password=key_password,
        psk=psk,
        psk_identity=psk_identity,
        device_id=device_id,
        encoding=encoding or DEFAULT_ENCODING,
    )


def signer_from_options(
    sign_key: Path | None, password_file: Path | None, password_env: str | None
) -> SignerSource | None:
    """The bundle signing key `--sign-key` and its password options name, if any."""
    if sign_key is None:
        return None
    password = secret_from_options(password_file, password_env, "--sign-key-password")
    return SignerSource(sign_key, password)


def secret_from_options(
    file: Path | None, env: str | None, option: str, *, hex_: bool = False
) -> SecretSource | None:
    """The secret an `<option>-file` / `<option>-env` pair names (at most one of them)."""
    if file is not None and env is not None:
        raise InputError(f"give either {option}-file or {option}-env, not both")
    if file is not None:
        return SecretSource(file=file, hex=hex_)
    if env is not None:
        return SecretSource(env=env, hex=hex_)
    return None


def override_spec(
    sources: PackSources, *, device_id: str | None, encoding: str | None
) -> PackSources:
    """A spec's sources with the device id and encoding given on the command line, if any."""
    if device_id is None and encoding is None:
        return sources
    return replace(
        sources,
        device_id=device_id if device_id is not None else sources.device_id,
        encoding=encoding or sources.encoding,
    )
