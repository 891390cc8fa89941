"""`provision bundle pack --format esp-secure-cert` and `bundle inspect` of such an image."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision import packing as bundle_io
from provision.bundle import esp_cust_flash, esp_secure_cert
from provision.check import Finding, Severity, check_credential_set, refuse_errors
from provision.cli.check import findings_table
from provision.cli.common import console, print_json, resolve_password, safe_text, table
from provision.dialects import esp32_image, esp32_keys
from provision.errors import InputError, UsageError, clip
from provision.inputs import read_input
from provision.pki.files import KEY_MODE, PUBLIC_MODE, OutputFile, check_outputs, write_outputs

LAYOUTS = ("tlv", "cust_flash")


def ask_password(prompt: str) -> bytes:
    password = resolve_password(password_file=None, password_env=None, prompt=prompt)
    assert password is not None
    return password


@dataclass(frozen=True)
class EspOptions:
    key_storage: str = "plain"
    chip: str | None = None
    efuse_key_file: Path | None = None
    efuse_key_id: int | None = None
    salt_file: Path | None = None
    entries: tuple[str, ...] = ()
    layout: str = "tlv"  # or cust_flash, the legacy layout


def _protection(o: EspOptions) -> esp32_keys.Protection:
    try:
        storage = esp32_keys.KeyStorage(o.key_storage)
    except ValueError:
        names = ", ".join(k.value for k in esp32_keys.KeyStorage)
        raise UsageError(f"--esp-key-storage {clip(o.key_storage)!r}: use one of {names}") from None
    if o.chip is not None and o.chip not in esp32_keys.CHIPS:
        names = ", ".join(esp32_keys.CHIPS)
        raise UsageError(f"--esp-chip {clip(o.chip)!r}: use one of {names}")
    if o.efuse_key_id is not None and o.efuse_key_id not in esp32_keys.EFUSE_KEY_IDS:
        raise UsageError(f"--esp-efuse-key-id {o.efuse_key_id}: use 0 to 5 (BLOCK_KEY0-5)")
    efuse_key = (
        read_input(o.efuse_key_file, "eFuse key file", limit=64) if o.efuse_key_file else None
    )
    salt = None
    if storage is esp32_keys.KeyStorage.HMAC_DERIVED:
        salt = (
            read_input(o.salt_file, "salt file", limit=1024)
            if o.salt_file
            else os.urandom(esp32_keys.DEFAULT_SALT_SIZE)
        )
    return esp32_keys.Protection(storage, o.chip, efuse_key, o.efuse_key_id, salt)


def _extra_entries(specs: tuple[str, ...]) -> list[esp_secure_cert.Entry]:
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        label, _, subtype = name.partition(":")
        try:
            kind = esp_secure_cert.TlvType[label.strip().upper()]
            number = int(subtype or "0", 0)
        except (KeyError, ValueError):
            kind, number = None, -1
        if not sep or not path or kind not in esp32_image.EXTRA_TYPES or not 0 <= number <= 254:
            names = ", ".join(sorted(t.name.lower() for t in esp32_image.EXTRA_TYPES))
            raise UsageError(
                f"--esp-entry {clip(spec)!r}: give TYPE[:SUBTYPE]=FILE, TYPE one of {names}"
            )
        assert kind is not None
        data = read_input(
            Path(path), f"--esp-entry {kind.name.lower()}", limit=esp_secure_cert.MAX_DATA
        )
        out.append(esp_secure_cert.Entry(kind, number, data))
    return out


def pack(
    sources: Any,
    out: Path,
    target: str,
    force: bool,
    size: str | None,
    json_out: bool,
    sign_key: Any,
    esp: EspOptions | None = None,
) -> None:
    if sign_key is not None:
        raise InputError("--sign-key: an esp_secure_cert image has no signature of ours")
    esp = esp or EspOptions()
    if esp.layout not in LAYOUTS:
        raise UsageError(f"--esp-layout {clip(esp.layout)!r}: use tlv or cust_flash")
    if esp.layout == "cust_flash" and esp.entries:
        raise UsageError("--esp-entry: the cust_flash layout has fixed slots only (use tlv)")
    default_size = esp_cust_flash.IMAGE_SIZE if esp.layout == "cust_flash" else None
    try:
        partition_size = int(size, 0) if size else default_size or esp_secure_cert.DEFAULT_SIZE
    except ValueError:
        raise InputError(f"--partition-size {size!r}: give a number like 0x2000") from None
    interactive = sys.stdin.isatty() or os.environ.get("PROVISION_ALLOW_PIPED_PASSWORD") == "1"
    protection = _protection(esp)
    extra = _extra_entries(esp.entries)
    credentials = bundle_io.read_credentials(
        sources, ask_password=ask_password if interactive else None
    )
    check_outputs([OutputFile(out, b"")], force=force)
    # The target's checks, then the partition's own (its refusals are the esp32 dialect's).
    findings = check_credential_set(credentials, target=target)
    if not force:
        refuse_errors(findings, "--force packs anyway")
    layout: dict[str, Any] = {}
    if esp.layout == "cust_flash":
        from provision.dialects import cust_flash_image

        image, items, warnings = cust_flash_image.build(
            credentials, partition_size=partition_size, protection=protection
        )
        secret = items.priv_key is not None
        rows = cust_flash_image.describe_items(items)
        layout = {"layout": "cust_flash"}
        said = (
            f"packed {len(rows)} items into {out} in the legacy cust_flash layout "
            f"({len(image)} bytes; firmware reads it only when built with esp_secure_cert_mgr's "
            "legacy formats option)"
        )
    else:
        image, entries, warnings = esp32_image.build(
            credentials, partition_size=partition_size, protection=protection, extra=extra
        )
        secret = any(e.type == esp_secure_cert.TlvType.PRIV_KEY for e in entries)
        rows = esp32_image.describe_entries(entries)
        said = (
            f"packed {len(entries)} esp_secure_cert entries into {out} "
            f"({len(image)} of {partition_size} bytes; write it at the partition's offset, "
            "0xD000 by default)"
        )
    findings += [
        Finding(w.code, Severity.WARNING, w.message, w.sec_tag, w.slot.label if w.slot else None)
        for w in warnings
        if w.code not in {f.code for f in findings}
    ]
    write_outputs(
        [OutputFile(out, image, KEY_MODE if secret else PUBLIC_MODE, is_key=secret)], force=force
    )
    if json_out:
        print_json(
            {
                "file": str(out),
                "format": "esp-secure-cert",
                **layout,
                "size": len(image),
                "partition_size": partition_size,
                "entries": rows,
                "findings": [f.to_json() for f in findings],
            }
        )
        return
    console.print(safe_text(said))
    if findings:
        console.print(findings_table(findings, title="pre-flight check"))


def _detail(row: dict[str, Any]) -> str:
    """The subject column for entries that are not certificates."""
    if "storage" in row:
        return str(row["storage"])
    if "signed_length" in row:
        return f"{row['algorithm']} over bytes {row['signed_offset']}..{row['signed_length']}"
    parts = []
    if "efuse_key_id" in row:
        parts.append(f"eFuse BLOCK_KEY{row['efuse_key_id']}")
    if "rsa_bits" in row:
        parts.append(f"RSA-{row['rsa_bits']}")
    return ", ".join(parts) or str(row.get("error", ""))


def _table(report: dict[str, Any]) -> None:
    if report.get("layout") == "cust_flash":
        head = (
            f"esp_secure_cert image {report['file']}: legacy cust_flash layout "
            f"({report['variant']}), {report['size']} bytes, every CRC ok"
        )
    else:
        head = (
            f"esp_secure_cert image {report['file']}: {report['size']} bytes, "
            f"{report['used']} used, integrity {report['integrity']}"
        )
    console.print(safe_text(head))
    rows = table()
    for col in ("offset", "type", "subtype", "encoding", "size"):
        rows.add_column(col, no_wrap=True)
    rows.add_column("subject", overflow="fold", ratio=1, min_width=12)
    rows.add_column("sha256", no_wrap=True)
    for r in report["entries"]:
        rows.add_row(
            f"0x{r['offset']:x}",
            r["type"],
            str(r.get("subtype", "-")),
            r["encoding"],
            str(r["size"]),
            safe_text(r.get("subject") or _detail(r)),
            r["sha256"][:12] + "…",
        )
    console.print(rows)


def inspect(path: Path, json_out: bool) -> bool:
    """Show `path` if it is an esp_secure_cert image (TLV or the legacy cust_flash layout);
    False when it is not one."""
    head = b""
    if path.is_file():
        with path.open("rb") as f:
            head = f.read(esp_cust_flash.METADATA_SIZE)
    if esp_secure_cert.looks_like_image(head):
        report = esp32_image.describe(read_input(path, "esp_secure_cert image"), path)
    elif esp_cust_flash.looks_like_image(head):
        from provision.dialects import cust_flash_image

        report = cust_flash_image.describe(read_input(path, "esp_secure_cert image"), path)
    else:
        return False
    if json_out:
        print_json(report)
    else:
        _table(report)
    return True
