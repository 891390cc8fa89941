"""`provision bundle pack --format esp-secure-cert` and `bundle inspect` of such an image."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from provision import packing as bundle_io
from provision.bundle import esp_secure_cert
from provision.check import Finding, Severity, check_credential_set, refuse_errors
from provision.cli.check import findings_table
from provision.cli.common import console, print_json, resolve_password, safe_text, table
from provision.dialects import esp32_image
from provision.errors import InputError
from provision.pki.files import KEY_MODE, PUBLIC_MODE, OutputFile, check_outputs, write_outputs


def ask_password(prompt: str) -> bytes:
    password = resolve_password(password_file=None, password_env=None, prompt=prompt)
    assert password is not None
    return password


def pack(
    sources: Any, out: Path, target: str, force: bool, size: str, json_out: bool, sign_key: Any
) -> None:
    if sign_key is not None:
        raise InputError("--sign-key: an esp_secure_cert image has no signature of ours")
    try:
        partition_size = int(size, 0)
    except ValueError:
        raise InputError(f"--partition-size {size!r}: give a number like 0x2000") from None
    interactive = sys.stdin.isatty() or os.environ.get("PROVISION_ALLOW_PIPED_PASSWORD") == "1"
    credentials = bundle_io.read_credentials(
        sources, ask_password=ask_password if interactive else None
    )
    check_outputs([OutputFile(out, b"")], force=force)
    # The target's checks, then the partition's own (its refusals are the esp32 dialect's).
    findings = check_credential_set(credentials, target=target)
    if not force:
        refuse_errors(findings, "--force packs anyway")
    image, entries, warnings = esp32_image.build(credentials, partition_size=partition_size)
    findings += [
        Finding(w.code, Severity.WARNING, w.message, w.sec_tag, w.slot.label if w.slot else None)
        for w in warnings
        if w.code not in {f.code for f in findings}
    ]
    secret = any(e.type == esp_secure_cert.TlvType.PRIV_KEY for e in entries)
    write_outputs(
        [OutputFile(out, image, KEY_MODE if secret else PUBLIC_MODE, is_key=secret)], force=force
    )
    if json_out:
        print_json(
            {
                "file": str(out),
                "format": "esp-secure-cert",
                "size": len(image),
                "partition_size": partition_size,
                "entries": esp32_image.describe_entries(entries),
                "findings": [f.to_json() for f in findings],
            }
        )
        return
    console.print(
        safe_text(
            f"packed {len(entries)} esp_secure_cert entries into {out} "
            f"({len(image)} of {partition_size} bytes; write it at the partition's offset, "
            "0xD000 by default)"
        )
    )
    if findings:
        console.print(findings_table(findings, title="pre-flight check"))


def _table(report: dict[str, Any]) -> None:
    console.print(
        safe_text(
            f"esp_secure_cert image {report['file']}: {report['size']} bytes, "
            f"{report['used']} used, integrity {report['integrity']}"
        )
    )
    rows = table()
    for col in ("offset", "type", "subtype", "encoding", "size"):
        rows.add_column(col, no_wrap=True)
    rows.add_column("subject", overflow="fold", ratio=1, min_width=12)
    rows.add_column("sha256", no_wrap=True)
    for r in report["entries"]:
        rows.add_row(
            f"0x{r['offset']:x}",
            r["type"],
            str(r["subtype"]),
            r["encoding"],
            str(r["size"]),
            safe_text(r.get("subject") or r.get("storage") or ""),
            r["sha256"][:12] + "…",
        )
    console.print(rows)


def inspect(path: Path, json_out: bool) -> bool:
    """Show `path` if it is an esp_secure_cert image; False when it is not one."""
    head = path.open("rb").read(4) if path.is_file() else b""
    if not esp_secure_cert.looks_like_image(head):
        return False
    report = esp32_image.describe(path.read_bytes(), path)
    if json_out:
        print_json(report)
    else:
        _table(report)
    return True
