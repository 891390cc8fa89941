"""`provision bundle`: pack, inspect, verify and unpack credential bundles.

Exit codes: 0 ok; 1 warnings (verify --strict); 2 check errors (pack refuses, verify
reports); 3 bad input file; 4 bundle malformed, corrupted or signature wrong; 5 output
exists (no --force); 6 a limit or policy refused the input.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from provision.bundle.spec import ENCODINGS
from provision.cli import common
from provision.cli.check import TARGET_HELP, findings_table
from provision.cli.common import print_json, resolve_password
from provision.errors import InputError, UsageError, clip

if TYPE_CHECKING:
    from provision.check import Finding

app = typer.Typer(no_args_is_help=True, help="Pack, inspect, verify and unpack bundles.")


def _ask_password(prompt: str) -> bytes:
    password = resolve_password(password_file=None, password_env=None, prompt=prompt)
    assert password is not None
    return password


def _one(values: list[Any], option: str, slot: str) -> Any:
    if len(values) > 1:
        raise InputError(f"duplicate slot {slot}: {option} given {len(values)} times")
    return values[0] if values else None


def _findings_table(findings: Sequence[Finding]) -> None:
    if not findings:
        return
    common.console.print(findings_table(findings, title="pre-flight check"))


def _records_table(report: dict[str, Any]) -> None:
    head = [
        f"bundle {report['file']}: format v{report['format_version']}, {report['size']} bytes",
        f"device id {report['device_id'] or '(none)'}",
        f"sha256 {report['digest']}",
        f"signed by key id {report['key_id']}" if report["signed"] else "not signed",
    ]
    for line in (", ".join(head[:2]), head[2], head[3]):
        common.console.print(common.safe_text(line))
    rows = common.table()
    for col in ("tag", "slot", "encoding", "size"):
        rows.add_column(col, no_wrap=True)
    rows.add_column("subject", overflow="fold", ratio=1, min_width=12)
    rows.add_column("issuer", overflow="fold", ratio=1, min_width=12)
    rows.add_column("expires", no_wrap=True)
    # The full digests are in --json; 12 hex digits tell items apart on a terminal.
    rows.add_column("sha256", no_wrap=True)
    for r in report["records"]:
        subject = issuer = expires = ""
        certs = r.get("certificates") or []
        if certs:
            first = certs[0]
            subject, issuer = first["common_name"] or first["subject"], first["issuer"]
            expires = first["not_after"][:10]
            issuer = issuer.removeprefix("CN=") if "," not in issuer else issuer
            if len(certs) > 1:
                subject += f" (+{len(certs) - 1} more)"
        elif r.get("certificate_error"):
            subject = f"unreadable: {r['certificate_error']}"
        elif "value" in r:
            subject = r["value"]
        encoding = r["encoding"] + ("+enc" if r["flags"] else "")
        rows.add_row(
            str(r["sec_tag"]),
            r["slot"],
            encoding,
            str(r["size"]),
            common.safe_text(subject),
            common.safe_text(issuer),
            expires,
            r["sha256"][:12] + "…" if r["sha256"] else "(not shown)",
        )
    common.console.print(rows)


@app.command()
def pack(
    out: Path = typer.Option(..., "--out", "-o", help="The bundle file to write."),
    spec: Path | None = typer.Option(None, "--spec", help="A TOML spec mapping sec tags to slots."),
    tag: int | None = typer.Option(None, "--tag", help="The sec_tag for the item options."),
    root_ca: list[Path] = typer.Option(
        [], "--root-ca", metavar="FILE", help="Root CA file (repeatable)."
    ),
    # Single-slot options are lists so that giving one twice is an error ("duplicate
    # slot"), not click's silent last-one-wins.
    client_cert_: list[Path] = typer.Option(
        [], "--client-cert", metavar="FILE", help="Device certificate."
    ),
    client_key_: list[Path] = typer.Option(
        [], "--client-key", metavar="FILE", help="Device private key."
    ),
    key_password_file_: list[Path] = typer.Option(
        [],
        "--key-password-file",
        metavar="FILE",
        help="Password of an encrypted client key (first line).",
    ),
    key_password_env_: list[str] = typer.Option(
        [],
        "--key-password-env",
        metavar="VAR",
        help="Environment variable with the client key password.",
    ),
    psk_hex_file_: list[Path] = typer.Option(
        [], "--psk-hex-file", metavar="FILE", help="PSK as hex, in a file."
    ),
    psk_hex_env_: list[str] = typer.Option(
        [], "--psk-hex-env", metavar="VAR", help="Environment variable with the PSK as hex."
    ),
    psk_identity_: list[str] = typer.Option(
        [], "--psk-identity", metavar="TEXT", help="PSK identity."
    ),
    device_id: str | None = typer.Option(None, "--device-id", help="Device id in the header."),
    encoding: str | None = typer.Option(
        None,
        "--encoding",
        help="compact (default: DER wherever lossless), der, pem, or keep (as each file is).",
    ),
    sign_key: Path | None = typer.Option(
        None, "--sign-key", help="Sign with this ECDSA P-256 key (the line's provisioning key)."
    ),
    sign_key_password_file: Path | None = typer.Option(
        None, "--sign-key-password-file", help="Password of --sign-key, from this file."
    ),
    sign_key_password_env: str | None = typer.Option(
        None, "--sign-key-password-env", help="Password of --sign-key, from this variable."
    ),
    target: str = typer.Option("default", "--target", help=TARGET_HELP),
    force: bool = typer.Option(
        False, "--force", help="Pack despite check errors; replace an existing output file."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    format_: str = typer.Option(
        "bundle", "--format", help="bundle, or esp-secure-cert (an ESP32 partition image)."
    ),
    partition_size: str | None = typer.Option(
        None,
        "--partition-size",
        help="esp-secure-cert: the partition's size (default 0x2000; 0x6000 for cust_flash).",
    ),
    esp_layout: str = typer.Option(
        "tlv",
        "--esp-layout",
        help="esp-secure-cert: tlv, or cust_flash (the legacy fixed-slot layout, offline only).",
    ),
    esp_key_storage: str = typer.Option(
        "plain",
        "--esp-key-storage",
        help="esp-secure-cert: plain, hmac-encrypted, hmac-derived, ecdsa-peripheral or rsa-ds "
        "(the chip's eFuse keys are burned separately).",
    ),
    esp_chip: str | None = typer.Option(
        None, "--esp-chip", help="esp-secure-cert: the chip (esp32c3, esp32s3, ...)."
    ),
    esp_efuse_key_file: Path | None = typer.Option(
        None, "--esp-efuse-key-file", help="esp-secure-cert: the 32-byte eFuse HMAC key."
    ),
    esp_efuse_key_id: int | None = typer.Option(
        None, "--esp-efuse-key-id", help="esp-secure-cert: the eFuse key block (0-5)."
    ),
    esp_salt_file: Path | None = typer.Option(
        None, "--esp-salt-file", help="esp-secure-cert hmac-derived: the salt (default: random)."
    ),
    esp_entry: list[str] = typer.Option(
        [],
        "--esp-entry",
        metavar="TYPE[:SUBTYPE]=FILE",
        help="esp-secure-cert: add an entry from a file (ds_data, ds_context, sec_cfg, "
        "hmac_ecdsa_key_salt, signature_block, user_data_1..5; repeatable).",
    ),
) -> None:
    """Pack credential files into a bundle (checked first; written all-or-nothing)."""
    from provision import packing as bundle_io
    from provision.cli import bundle_esp, bundle_options

    if format_ not in ("bundle", "esp-secure-cert"):
        raise InputError(f"--format {format_!r}: use bundle or esp-secure-cert")
    client_cert = _one(client_cert_, "--client-cert", "client_cert")
    client_key = _one(client_key_, "--client-key", "client_key")
    key_password_file = _one(key_password_file_, "--key-password-file", "key_password")
    key_password_env = _one(key_password_env_, "--key-password-env", "key_password")
    psk_hex_file = _one(psk_hex_file_, "--psk-hex-file", "psk")
    psk_hex_env = _one(psk_hex_env_, "--psk-hex-env", "psk")
    psk_identity = _one(psk_identity_, "--psk-identity", "psk_identity")
    if encoding is not None and encoding not in ENCODINGS:
        raise UsageError(f"--encoding {clip(encoding)!r}: use one of {', '.join(ENCODINGS)}")
    key_pw = bundle_options.secret_from_options(
        key_password_file, key_password_env, "--key-password"
    )
    psk = bundle_options.secret_from_options(psk_hex_file, psk_hex_env, "--psk-hex", hex_=True)
    sources = bundle_options.sources_from_cli(
        spec=spec,
        sec_tag=tag,
        root_ca=root_ca,
        client_cert=client_cert,
        client_key=client_key,
        key_password=key_pw,
        psk=psk,
        psk_identity=psk_identity,
        device_id=device_id,
        encoding=encoding,
    )
    if format_ == "esp-secure-cert":
        # Espressif's tool and esp-tls expect PEM; --encoding der for DER (e.g. Matter).
        esp_encoding = encoding or ("pem" if sources.encoding == "compact" else sources.encoding)
        sources = bundle_options.override_spec(sources, device_id=None, encoding=esp_encoding)
        esp = bundle_esp.EspOptions(
            esp_key_storage, esp_chip, esp_efuse_key_file, esp_efuse_key_id, esp_salt_file,
            tuple(esp_entry), esp_layout,
        )  # fmt: skip
        bundle_esp.pack(sources, out, target, force, partition_size, json_out, sign_key, esp)
        return
    esp_given = (esp_chip, esp_efuse_key_file, esp_efuse_key_id, esp_salt_file)
    esp_set = esp_entry or esp_key_storage != "plain" or esp_layout != "tlv"
    if esp_set or any(v is not None for v in esp_given):
        raise UsageError("the --esp-* options are for --format esp-secure-cert")
    signer = bundle_options.signer_from_options(
        sign_key, sign_key_password_file, sign_key_password_env
    )
    # Without a terminal a prompt would hang a line script: the library then names the
    # password options in its error instead.
    interactive = sys.stdin.isatty() or os.environ.get("PROVISION_ALLOW_PIPED_PASSWORD") == "1"
    result = bundle_io.pack(
        sources,
        out,
        target=target,
        force=force,
        signer=signer,
        ask_password=_ask_password if interactive else None,
    )
    if json_out:
        print_json(
            {
                "file": str(result.path),
                "size": result.size,
                "digest": result.digest.hex(),
                "key_id": result.key_id.hex() if result.key_id else None,
                "items": len(result.credentials),
                "findings": [f.to_json() for f in result.findings],
            }
        )
        return
    signed = f", signed by key id {result.key_id.hex()}" if result.key_id else ""
    common.console.print(
        common.safe_text(
            f"packed {len(result.credentials)} items into {result.path} "
            f"({result.size} bytes, sha256 {result.digest.hex()}{signed})"
        )
    )
    _findings_table(result.findings)


@app.command()
def inspect(
    bundle: Path = typer.Argument(..., help="The bundle file."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show what a bundle or an esp_secure_cert image holds (secrets as size only)."""
    from provision import packing as bundle_io
    from provision.cli import bundle_esp

    if bundle_esp.inspect(bundle, json_out):
        return
    report = bundle_io.describe(bundle_io.read_bundle(bundle), bundle)
    if json_out:
        print_json(report)
    else:
        _records_table(report)


@app.command()
def verify(
    bundle: Path = typer.Argument(..., help="The bundle file."),
    pubkey: Path | None = typer.Option(
        None, "--pubkey", help="Public key (PEM/DER) the bundle must be signed with."
    ),
    signer_cert: Path | None = typer.Option(
        None, "--signer-cert", help="Certificate of the key the bundle must be signed with."
    ),
    target: str = typer.Option("default", "--target", help=TARGET_HELP),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Check integrity, signature and contents. Exit 0 ok, 1 warnings (--strict), 2 errors,
    4 corrupt or badly signed."""
    from provision import packing as bundle_io
    from provision.check import exit_code_for

    if pubkey is not None and signer_cert is not None:
        raise UsageError("give either --pubkey or --signer-cert, not both")
    result = bundle_io.verify(bundle, public_key=pubkey or signer_cert, target=target)
    code = exit_code_for(result.findings, strict=strict)
    if json_out:
        print_json(
            {
                "file": str(bundle),
                "integrity": "ok",
                "signature": result.signature,
                "key_id": result.decoded.signature.key_id.hex()
                if result.decoded.signature
                else None,
                "digest": result.decoded.digest.hex(),
                "findings": [f.to_json() for f in result.findings],
                "exit_code": code,
            }
        )
    else:
        common.console.print(
            common.safe_text(f"{bundle}: integrity ok ({len(result.decoded.credentials)} items)")
        )
        common.console.print(f"signature: {result.signature}")
        _findings_table(result.findings)
        if not result.findings:
            common.console.print("pre-flight check: no findings")
    if code:
        if not json_out:
            common.err_console.print(
                "verify: check found errors" if code == 2 else "verify: warnings (--strict)"
            )
        raise typer.Exit(code)


@app.command()
def unpack(
    bundle: Path = typer.Argument(..., help="The bundle file."),
    # --out-dir/-o as in the pki commands; --dir/-d kept.
    out_dir: Path = typer.Option(
        ..., "--out-dir", "-o", "--dir", "-d", help="Directory to write the items to."
    ),
    force: bool = typer.Option(False, "--force", help="Replace existing files."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a list."),
) -> None:
    """Write the items back to files (keys 0600) and a bundle.toml spec that repacks them."""
    from provision import packing as bundle_io

    paths = bundle_io.unpack(bundle, out_dir, force=force)
    if json_out:
        print_json({"files": [str(p) for p in paths]})
        return
    for p in paths:
        common.console.print(common.safe_text(p))
