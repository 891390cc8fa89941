"""What goes into a bundle, as sources: file paths and where secrets come from.

A `PackSources` names files, never holds secrets; `provision.packing` reads it. It comes
from command-line options or from a TOML spec file like this one (paths are relative to
the spec file; secrets come from files or environment variables, never from the spec):

    device_id = "dev-0001"          # optional
    encoding = "compact"            # optional: compact (default) | der | pem | keep

    [sec_tag.42]
    root_ca = ["root.pem", "other-root.pem"]   # one path or a list
    client_cert = "device.pem"                 # may hold the chain (PEM)
    client_key = "device.key"
    key_password = { file = "key.pw" }         # or { env = "KEY_PW" }; omitted: prompt

    [sec_tag.7]
    psk = { hex_file = "psk.hex" }             # or { hex_env = "PSK_HEX" }
    psk_identity = "device-7"                  # literal, or { file = "identity.txt" }
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.bundle.model import MAX_SEC_TAG, SlotType
from provision.errors import InputError
from provision.inputs import read_text

# compact: DER wherever the conversion is lossless (the fewest bytes on the wire), else as
# given; der / pem: convert everything or fail; keep: each file's own encoding.
ENCODINGS = ("compact", "der", "pem", "keep")
DEFAULT_ENCODING = "compact"


@dataclass(frozen=True)
class SecretSource:
    """Where a secret is read from: a file (first line) or an environment variable."""

    file: Path | None = None
    env: str | None = None
    # psk sources hold hex text that io decodes to bytes
    hex: bool = False

    def describe(self) -> str:
        return f"file {self.file}" if self.file is not None else f"environment variable {self.env}"


@dataclass(frozen=True)
class TagSources:
    sec_tag: int
    root_ca: tuple[Path, ...] = ()
    client_cert: Path | None = None
    client_key: Path | None = None
    key_password: SecretSource | None = None
    psk: SecretSource | None = None
    psk_identity: bytes | Path | None = None

    def __post_init__(self) -> None:
        check_sec_tag(self.sec_tag, "sec_tag")

    @property
    def empty(self) -> bool:
        return not (
            self.root_ca
            or self.client_cert
            or self.client_key
            or self.key_password
            or self.psk
            or self.psk_identity
        )


@dataclass(frozen=True)
class PackSources:
    tags: tuple[TagSources, ...]
    device_id: str | None = None
    encoding: str = DEFAULT_ENCODING
    origin: str = "command line"

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise InputError(
                f"{self.origin}: unknown encoding {self.encoding!r} (use {', '.join(ENCODINGS)})"
            )
        seen: set[int] = set()
        for tag in self.tags:
            if tag.sec_tag in seen:
                raise InputError(f"{self.origin}: sec_tag {tag.sec_tag} given twice")
            seen.add(tag.sec_tag)


def check_sec_tag(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: sec_tag {value!r} is not a whole number")
    if not 0 <= value <= MAX_SEC_TAG:
        raise InputError(f"{where}: sec_tag {value} out of range (0..{MAX_SEC_TAG})")
    return value


# --- the TOML spec ----------------------------------------------------------------------


def _path(base: Path, value: object, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: expected a file path (a string)")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _secret(base: Path, value: object, where: str, *, hex_: bool) -> SecretSource:
    file_key, env_key = ("hex_file", "hex_env") if hex_ else ("file", "env")
    if not isinstance(value, dict) or set(value) - {file_key, env_key} or len(value) != 1:
        raise InputError(
            f'{where}: expected {{ {file_key} = "..." }} or {{ {env_key} = "..." }} '
            "(secrets are never written in a spec file)"
        )
    if file_key in value:
        return SecretSource(file=_path(base, value[file_key], where), hex=hex_)
    env = value[env_key]
    if not isinstance(env, str) or not env:
        raise InputError(f"{where}: {env_key} must name an environment variable")
    return SecretSource(env=env, hex=hex_)


def _tag(base: Path, name: str, table: object, origin: str) -> TagSources:
    try:
        sec_tag = int(name, 10)
    except ValueError:
        raise InputError(f"{origin}: [sec_tag.{name}]: sec_tag must be a whole number") from None
    where = f"{origin}: [sec_tag.{name}]"
    check_sec_tag(sec_tag, where)
    if not isinstance(table, dict):
        raise InputError(f"{where}: expected a table of slots")
    found: dict[SlotType, tuple[str, object]] = {}
    for key, value in table.items():
        try:
            slot = SlotType.parse(key)
        except InputError as err:
            raise InputError(f"{where}: {err.message}") from None
        if slot in found:
            raise InputError(
                f"{where}: duplicate slot {slot.label} (given as {found[slot][0]!r} and {key!r})"
            )
        found[slot] = (key, value)
    args: dict[str, Any] = {"sec_tag": sec_tag}
    for slot, (key, value) in found.items():
        at = f"{where} {key}"
        if slot is SlotType.ROOT_CA:
            values = value if isinstance(value, list) else [value]
            if not values:
                raise InputError(f"{at}: empty list")
            args["root_ca"] = tuple(_path(base, v, at) for v in values)
        elif slot in (SlotType.CLIENT_CERT, SlotType.CLIENT_KEY):
            args[slot.label] = _path(base, value, at)
        elif slot is SlotType.KEY_PASSWORD:
            args["key_password"] = _secret(base, value, at, hex_=False)
        elif slot is SlotType.PSK:
            args["psk"] = _secret(base, value, at, hex_=True)
        else:  # psk_identity: not a secret, so a literal is fine
            if isinstance(value, str):
                if not value:
                    raise InputError(f"{at}: empty psk_identity")
                args["psk_identity"] = value.encode()
            elif isinstance(value, dict) and set(value) == {"file"}:
                args["psk_identity"] = _path(base, value["file"], at)
            else:
                raise InputError(f'{at}: expected a string or {{ file = "..." }}')
    tag = TagSources(**args)
    if tag.empty:
        raise InputError(f"{where}: no slots")
    return tag


def load_spec(path: Path) -> PackSources:
    """Read a TOML spec; every problem is an InputError naming the file and the table."""
    origin = str(path)
    text = read_text(path, "spec")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML: {err}") from None
    unknown = set(doc) - {"device_id", "encoding", "sec_tag"}
    if unknown:
        raise InputError(
            f"{path}: unknown key {sorted(unknown)[0]!r} (expected device_id, encoding, sec_tag)"
        )
    device_id = doc.get("device_id")
    if device_id is not None and not isinstance(device_id, str):
        raise InputError(f"{path}: device_id must be a string")
    encoding = doc.get("encoding", DEFAULT_ENCODING)
    if not isinstance(encoding, str):
        raise InputError(f"{path}: encoding must be a string")
    tags_table = doc.get("sec_tag")
    if not isinstance(tags_table, dict) or not tags_table:
        raise InputError(f"{path}: no [sec_tag.N] tables")
    base = path.parent
    tags = tuple(_tag(base, name, table, origin) for name, table in tags_table.items())
    return PackSources(tags, device_id=device_id, encoding=encoding, origin=origin)


def _toml_str(value: str) -> str:
    # TOML basic strings share JSON's escapes for what we write (paths, ids).
    import json

    return json.dumps(value, ensure_ascii=False)


def dump_spec(sources: PackSources, relative_to: Path) -> str:
    """A TOML spec for `sources` with paths relative to `relative_to` (used by unpack)."""

    def rel(p: Path) -> str:
        try:
            return p.relative_to(relative_to).as_posix()
        except ValueError:
            return p.as_posix()

    lines = ["# Written by `provision bundle unpack`; pack it again with --spec.", ""]
    if sources.device_id is not None:
        lines.append(f"device_id = {_toml_str(sources.device_id)}")
    lines.append(f"encoding = {_toml_str(sources.encoding)}")
    for tag in sources.tags:
        lines += ["", f"[sec_tag.{tag.sec_tag}]"]
        if tag.root_ca:
            lines.append("root_ca = [" + ", ".join(_toml_str(rel(p)) for p in tag.root_ca) + "]")
        if tag.client_cert is not None:
            lines.append(f"client_cert = {_toml_str(rel(tag.client_cert))}")
        if tag.client_key is not None:
            lines.append(f"client_key = {_toml_str(rel(tag.client_key))}")
        if tag.key_password is not None and tag.key_password.file is not None:
            lines.append(f"key_password = {{ file = {_toml_str(rel(tag.key_password.file))} }}")
        if tag.psk is not None and tag.psk.file is not None:
            lines.append(f"psk = {{ hex_file = {_toml_str(rel(tag.psk.file))} }}")
        if isinstance(tag.psk_identity, Path):
            lines.append(f"psk_identity = {{ file = {_toml_str(rel(tag.psk_identity))} }}")
        elif tag.psk_identity is not None:
            lines.append(f"psk_identity = {_toml_str(tag.psk_identity.decode())}")
    return "\n".join(lines) + "\n"
