"""`provision device info|list|write|verify|delete|keygen|tls-check|ports` — talk to one device.

`--port` takes any pyserial URL or device path (/dev/ttyUSB0, COM3, socket://host:port,
rfc2217://, loop://) or a simulated device (sim://native?flash=dev.flash).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

# Only what the command line and its help need: each command imports the device stack, the
# consoles and the credential code when it runs (`device --help` loads none of them).
from provision.bundle.model import MAX_SEC_TAG
from provision.cli import common
from provision.cli.check import TARGET_HELP
from provision.cli.common import (
    PASSWORD_ENV_HELP,
    PASSWORD_FILE_HELP,
    PORT_HELP,
    dialect_option,
    print_json,
    resolve_password,
)
from provision.cli.progress import opening_status, status, transfer_bar
from provision.errors import ProvisionError, UsageError, VerifyFailed, clip
from provision.inputs import read_input

if TYPE_CHECKING:
    import provision.device as device_mod
    from provision.dialects.base import Attestation

app = typer.Typer(no_args_is_help=True)

PORT = typer.Option(..., "--port", "-p", help=PORT_HELP)
BAUD = typer.Option(None, "--baud", help="Line rate to open at (default 115200).")
FAST_BAUD = typer.Option(
    None,
    "--fast-baud",
    help="Rate to switch the session to once open, or 'auto' (the fastest the device offers); "
    "a device that offers none stays at --baud.",
)
TIMEOUT = typer.Option(2.0, "--timeout", help="Seconds to wait for each answer.")
RETRIES = typer.Option(5, "--retries", help="Tries before a request or transfer gives up.")
DIALECT = dialect_option("auto", auto=True)
JSON = typer.Option(False, "--json", help="Print one JSON document instead of tables.")
# The credential set `write` and `verify` take: a bundle file, a spec or item options.
SPEC = typer.Option(None, "--spec", help="A TOML spec, as `bundle pack`.")
# Range-checked here: a sec_tag the wire format cannot carry was a construct error (exit 8).
TAG = typer.Option(None, "--tag", min=0, max=MAX_SEC_TAG, help="sec_tag for the item options.")
ROOT_CA = typer.Option([], "--root-ca", metavar="FILE", help="Root CA file.")
CLIENT_CERT = typer.Option(None, "--client-cert", metavar="FILE", help="Client certificate file.")
CLIENT_KEY = typer.Option(None, "--client-key", metavar="FILE", help="Client private key file.")
KEY_PASSWORD_FILE = typer.Option(
    None, "--key-password-file", help="Password of an encrypted --client-key, from this file."
)
KEY_PASSWORD_ENV = typer.Option(
    None, "--key-password-env", help="Password of an encrypted --client-key, from this variable."
)
TRACE = typer.Option(
    False,
    "--trace",
    help="Print every frame or line on stderr, timestamped and decoded (keys, PSKs and "
    "passwords redacted). Same as PROVISION_TRACE=1.",
)


def _open(
    port: str,
    baud: int | None,
    timeout: float,
    retries: int,
    dialect: str,
    trace: bool = False,
    fast_baud: str | None = None,
    pipeline: bool = False,
) -> device_mod.Device:
    if timeout <= 0:
        raise UsageError("--timeout must be positive")
    if retries < 0:
        raise UsageError("--retries must be 0 or more")
    import provision.device as device_mod

    with status(opening_status(port, dialect)):
        dev = device_mod.open(
            port,
            dialect=dialect,
            baud=baud,
            timeout=timeout,
            retries=retries,
            trace=trace,
            fast_baud=parse_fast_baud(fast_baud),
            pipeline=pipeline,
        )
    dev.notice = lambda text: typer.echo(text, err=True)
    return dev


def parse_fast_baud(value: str | None) -> int | str | None:
    """--fast-baud: a positive rate or 'auto'."""
    if value is None or value == "auto":
        return value
    if not value.isdigit() or not 1200 <= int(value) <= 16_000_000:
        raise UsageError(f"--fast-baud {clip(value)!r}: give a rate (1200..16000000) or 'auto'")
    return int(value)


def _slot_json(s: device_mod.SlotInfo, held: bytes | None = None) -> dict[str, Any]:
    from provision.slot_view import slot_view

    return slot_view(s, held=held)  # a secret slot's digest is never shown (provision.slot_view)


@app.command()
def info(
    port: str = PORT,
    baud: int | None = BAUD,
    fast_baud: str | None = FAST_BAUD,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    dialect: str = DIALECT,
    trace: bool = TRACE,
    json_out: bool = JSON,
) -> None:
    """Show the device's identity, firmware, dialect and limits."""
    with _open(port, baud, timeout, retries, dialect, trace, fast_baud) as dev:
        i = dev.info()
        token = _attestation_token(dev)
    data: dict[str, Any] = {
        "port": port,
        "dialect": i.dialect,
        "device_id": i.device_id,
        "firmware": i.firmware,
    }
    data["details"] = i.details
    if token is not None:
        data["uuid"] = token["device_uuid"]
        data["attestation"] = token
    if json_out:
        print_json(data)
        return
    rows = common.table("field", "value", show_header=False)
    for key in ("port", "dialect", "device_id", "firmware"):
        rows.add_row(key, common.safe_text(data[key]))
    for key, value in i.details.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        rows.add_row(key, common.safe_text(shown))
    if token is not None:
        rows.add_row("uuid", common.safe_text(token["device_uuid"]))
        for key, value in token.items():
            rows.add_row(f"attestation {key}", common.safe_text(value))
    common.console.print(rows)


def _attestation_token(dev: device_mod.Device) -> dict[str, Any] | None:
    """The decoded identity token of a dialect that has one (nRF91 %ATTESTTOKEN)."""
    from provision.dialects.nrf_attestation import SIGNATURE_NOT_CHECKED

    token = dev.attestation_token()
    if token is None:
        return None
    return {**token.to_json(), "signature": SIGNATURE_NOT_CHECKED}


def _describe_cert(data: bytes) -> dict[str, Any]:
    from provision.pki.certs import describe_certificate

    try:
        s = describe_certificate(data, "certificate on the device")
    except ProvisionError:
        return {"subject": None, "not_after": None}
    return {"subject": s.subject, "not_after": s.not_after.isoformat()}


@app.command("list")
def list_(
    port: str = PORT,
    baud: int | None = BAUD,
    fast_baud: str | None = FAST_BAUD,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    dialect: str = DIALECT,
    trace: bool = TRACE,
    no_read: bool = typer.Option(
        False, "--no-read", help="Do not read certificates back for subject and expiry."
    ),
    json_out: bool = JSON,
) -> None:
    """List stored slots: tag, slot, size, SHA-256; subject and expiry for certificates."""
    from provision.slot_view import digest_cell

    rows = []
    with (
        _open(port, baud, timeout, retries, dialect, trace, fast_baud) as dev,
        status(f"reading the slot list from {port}") as say,
    ):
        for s in dev.list():
            row = _slot_json(s)
            if s.type.is_certificate and not no_read:
                say(f"reading {s.type.label} of sec_tag {s.sec_tag} from {port}")
                try:
                    row.update(_describe_cert(dev.read(s.sec_tag, s.type)))
                except ProvisionError as err:
                    row.update({"subject": None, "not_after": None, "read_error": err.message})
            rows.append(row)
    if json_out:
        print_json({"port": port, "slots": rows})
        return
    if not rows:
        common.say("no credentials stored")
        return
    slots = common.table("sec_tag", "slot", "size", "sha256", "subject", "expires")
    for r in rows:
        slots.add_row(
            str(r["sec_tag"]),
            r["slot"],
            "" if r["size"] is None else str(r["size"]),
            digest_cell(r),
            common.safe_text(r.get("subject") or ""),
            (r.get("not_after") or "")[:10],
        )
    common.console.print(slots)


def _load_input(
    bundle: Path | None,
    spec: Path | None,
    tag: int | None,
    root_ca: list[Path],
    client_cert: Path | None,
    client_key: Path | None,
    key_password_file: Path | None,
    key_password_env: str | None,
    *,
    sign_key: Path | None = None,
    sign_key_password_file: Path | None = None,
    sign_key_password_env: str | None = None,
    psk_hex_file: Path | None = None,
    psk_hex_env: str | None = None,
    psk_identity: str | None = None,
    device_id: str | None = None,
    encoding: str | None = None,
) -> bytes:
    """Bundle bytes from a bundle file, a spec, or item options (as `bundle pack` takes)."""
    from provision import packing as bundle_io
    from provision.cli import bundle_options

    psk = bundle_options.secret_from_options(psk_hex_file, psk_hex_env, "--psk-hex", hex_=True)
    key_pw = bundle_options.secret_from_options(
        key_password_file, key_password_env, "--key-password"
    )
    items = [tag is not None, bool(root_ca), client_cert, client_key, psk, psk_identity]
    given = [bundle is not None, spec is not None, any(items)]
    if sum(map(bool, given)) != 1:
        raise UsageError("give one of: a bundle file, --spec, or --tag with item options")
    if key_pw is not None and not any(items):
        # A bundle or spec names its own key password; ignoring this one would surprise.
        raise UsageError("--key-password-file/-env go with item options, not a bundle or --spec")
    if bundle is not None:
        if sign_key is not None:
            raise UsageError("--sign-key signs new bundles; a bundle file is sent as it is")
        if device_id is not None or encoding is not None:
            # Ignoring them would write something other than what the user asked for.
            raise UsageError(
                "--device-id/--encoding shape new bundles; a bundle file is sent as it is "
                "(repack it with `bundle pack`)"
            )
        bundle_io.read_bundle(bundle)  # names the file in any error
        return read_input(bundle, "bundle")
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
    credentials = bundle_io.read_credentials(sources)
    signer = bundle_options.signer_from_options(
        sign_key, sign_key_password_file, sign_key_password_env
    )
    signing_key = bundle_io.load_signer(signer) if signer is not None else None
    data, _ = bundle_io.pack_bytes(credentials, signing_key=signing_key)
    return data


@app.command()
def write(
    bundle: Path | None = typer.Argument(None, help="A bundle file (from `bundle pack`)."),
    port: str = PORT,
    spec: Path | None = SPEC,
    tag: int | None = TAG,
    root_ca: list[Path] = ROOT_CA,
    client_cert: Path | None = CLIENT_CERT,
    client_key: Path | None = CLIENT_KEY,
    key_password_file: Path | None = KEY_PASSWORD_FILE,
    key_password_env: str | None = KEY_PASSWORD_ENV,
    sign_key: Path | None = typer.Option(None, "--sign-key", help="Sign the bundle (P-256)."),
    sign_key_password_file: Path | None = typer.Option(
        None, "--sign-key-password-file", help="Password of --sign-key, from this file."
    ),
    sign_key_password_env: str | None = typer.Option(
        None, "--sign-key-password-env", help="Password of --sign-key, from this variable."
    ),
    psk_hex_file: Path | None = typer.Option(None, "--psk-hex-file", help="PSK as hex, in a file."),
    psk_hex_env: str | None = typer.Option(None, "--psk-hex-env", help="Variable with the PSK."),
    psk_identity: str | None = typer.Option(None, "--psk-identity", help="PSK identity."),
    device_id: str | None = typer.Option(None, "--device-id", help="Device id in the bundle."),
    encoding: str | None = typer.Option(
        None,
        "--encoding",
        help="compact (default: DER wherever lossless), der, pem, or keep (as each file is).",
    ),
    target: str | None = typer.Option(
        None,
        "--target",
        help=TARGET_HELP + " Default: the device's own (at-cmng, at-shell: nrf91; "
        "zephyr-shell: zephyr; native: default).",
    ),
    force: bool = typer.Option(False, "--force", help="Write despite pre-flight check errors."),
    baud: int | None = BAUD,
    fast_baud: str | None = FAST_BAUD,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    dialect: str = DIALECT,
    trace: bool = TRACE,
    json_out: bool = JSON,
) -> None:
    """Check and write a credential set, then verify the device's digests.

    What a cut-short write leaves depends on the dialect: native commits atomically (the old
    set or the new one, whole); at-cmng, at-shell and zephyr-shell delete the slots they
    replace before writing, so a cut leaves the old set, the new set or an incomplete set,
    never old and new slots together; the error after a failed write lists what the device
    holds. Each dialect's guarantee: docs/dialects.md."""
    data = _load_input(
        bundle,
        spec,
        tag,
        root_ca,
        client_cert,
        client_key,
        key_password_file,
        key_password_env,
        sign_key=sign_key,
        sign_key_password_file=sign_key_password_file,
        sign_key_password_env=sign_key_password_env,
        psk_hex_file=psk_hex_file,
        psk_hex_env=psk_hex_env,
        psk_identity=psk_identity,
        device_id=device_id,
        encoding=encoding,
    )
    from provision.bundle import format as bundle_format

    credentials = bundle_format.decode(data).credentials
    # The write follows the open at once: a native transfer need not wait for HELLO's answer.
    with _open(port, baud, timeout, retries, dialect, trace, fast_baud, pipeline=True) as dev:
        show_bar = not json_out and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        if show_bar:
            with transfer_bar("writing", len(data)) as on_progress:
                result = dev.provision(
                    credentials, bundle=data, target=target, force=force, progress=on_progress
                )
        else:
            result = dev.provision(credentials, bundle=data, target=target, force=force)
        findings = result.findings
        dialect_name = dev.dialect
    out = {
        "ok": True,
        "port": port,
        "dialect": dialect_name,
        # Verified above: the device's digest of every written slot is the host's.
        "slots": [_slot_json(s, held=s.sha256) for s in result.written],
        "bytes_sent": result.bytes_sent,
        "seconds": round(result.seconds, 4),
        "verified": True,
        "findings": [f.to_json() for f in findings],
        "strays_deleted": [
            {"sec_tag": tag, "slot": slot.label} for tag, slot in result.strays_deleted
        ],
        "unchanged": [{"sec_tag": tag, "slot": slot.label} for tag, slot in result.unchanged],
    }
    if result.strays_deleted:
        from provision.device import strays_words

        typer.echo(f"warning: {strays_words(result.strays_deleted)}", err=True)
    if json_out:
        print_json(out)
        return
    tags = ", ".join(map(str, credentials.sec_tags))
    sent = len(result.written) - len(result.unchanged)
    wire = f"({result.bytes_sent} bytes on the wire, {result.seconds:.2f} s)"
    if sent == 0:
        common.say(f"sec_tags {tags} hold this set already: nothing written {wire}; verified")
        return
    kept = f"; {len(result.unchanged)} held their content already" if result.unchanged else ""
    common.say(f"wrote {sent} slots in sec_tags {tags}{kept} {wire}; device digests verified")


@app.command()
def verify(
    bundle: Path | None = typer.Argument(None, help="A bundle file."),
    port: str = PORT,
    spec: Path | None = SPEC,
    tag: int | None = TAG,
    root_ca: list[Path] = ROOT_CA,
    client_cert: Path | None = CLIENT_CERT,
    client_key: Path | None = CLIENT_KEY,
    key_password_file: Path | None = KEY_PASSWORD_FILE,
    key_password_env: str | None = KEY_PASSWORD_ENV,
    baud: int | None = BAUD,
    fast_baud: str | None = FAST_BAUD,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    dialect: str = DIALECT,
    trace: bool = TRACE,
    json_out: bool = JSON,
) -> None:
    """Compare the device's digests with a credential set (exit 2 on any difference)."""
    data = _load_input(
        bundle,
        spec,
        tag,
        root_ca,
        client_cert,
        client_key,
        key_password_file,
        key_password_env,
    )
    from provision.bundle import format as bundle_format

    credentials = bundle_format.decode(data).credentials
    with _open(port, baud, timeout, retries, dialect, trace, fast_baud) as dev:
        report = dev.verify(credentials)
    if json_out:
        print_json({"ok": report.ok, "port": port, "mismatches": list(report.mismatches)})
    elif report.ok:
        common.say(f"device matches: {len(credentials)} slots verified")
    if not report.ok:
        if not json_out:
            for line in report.mismatches:
                common.err_console.print(common.safe_text(line))
        raise VerifyFailed(f"device differs from the set ({len(report.mismatches)} slots)")


@app.command()
def delete(
    port: str = PORT,
    tag: int | None = typer.Option(
        None, "--tag", min=0, max=MAX_SEC_TAG, help="The sec_tag to delete from."
    ),
    slot: str | None = typer.Option(None, "--slot", help="One slot (root_ca, client_key, …)."),
    all_: bool = typer.Option(False, "--all", help="Delete every credential on the device."),
    yes: bool = typer.Option(False, "--yes", help="Confirm --all."),
    baud: int | None = BAUD,
    fast_baud: str | None = FAST_BAUD,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    dialect: str = DIALECT,
    trace: bool = TRACE,
    json_out: bool = JSON,
) -> None:
    """Delete one slot (--tag --slot), one tag (--tag) or everything (--all --yes)."""
    if all_:
        if tag is not None or slot is not None:
            raise UsageError("--all cannot be combined with --tag or --slot")
        if not yes:
            raise UsageError("--all deletes every credential on the device: add --yes")
    elif tag is None:
        raise UsageError("give --tag (and optionally --slot), or --all --yes")
    from provision.bundle.model import SlotType

    slot_type = SlotType.parse(slot) if slot is not None else None
    with _open(port, baud, timeout, retries, dialect, trace, fast_baud) as dev:
        dev.delete(None if all_ else tag, slot_type)
    what = "everything" if all_ else f"sec_tag {tag}" + (f" {slot_type.label}" if slot_type else "")
    if json_out:
        print_json({"ok": True, "port": port, "deleted": what})
    else:
        common.say(f"deleted {what}")


@app.command()
def keygen(
    port: str = PORT,
    tag: int = typer.Option(
        ..., "--tag", min=0, max=MAX_SEC_TAG, help="sec_tag for the new client_key."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Write the CSR here (PEM)."),
    subject: str | None = typer.Option(None, "--subject", help="CN (default: device id)."),
    ca: Path | None = typer.Option(
        None, "--ca", help="Sign the CSR: a CA folder from `pki init-ca`, or a CA certificate…"
    ),
    ca_key: Path | None = typer.Option(None, "--ca-key", help="…with this CA key file."),
    # --ca-password-* as in `pki issue`/`pki sign-csr`; --ca-key-password-* kept as aliases.
    ca_key_password_file: Path | None = typer.Option(
        None,
        "--ca-password-file",
        "--ca-key-password-file",
        help="CA key password: " + PASSWORD_FILE_HELP,
    ),
    ca_key_password_env: str | None = typer.Option(
        None,
        "--ca-password-env",
        "--ca-key-password-env",
        help="CA key password: " + PASSWORD_ENV_HELP,
    ),
    cert_out: Path | None = typer.Option(None, "--cert-out", help="Also save the certificate."),
    days: int = typer.Option(365, "--days", help="Validity of the signed certificate."),
    force: bool = typer.Option(False, "--force", help="Replace existing output files."),
    baud: int | None = BAUD,
    fast_baud: str | None = FAST_BAUD,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    dialect: str = DIALECT,
    trace: bool = TRACE,
    json_out: bool = JSON,
) -> None:
    """Make the device generate a P-256 key in --tag and return a CSR; with --ca, sign it
    and install the certificate in the same tag."""
    from provision.pki.csr import csr_bytes, load_csr
    from provision.pki.files import OutputFile, check_destinations, write_outputs

    if ca_key is not None and ca is None:
        raise UsageError("--ca-key needs --ca (a CA certificate, or a folder from `pki init-ca`)")
    if ca is not None and ca.is_file() and ca_key is None:
        raise UsageError(
            f"{ca}: a CA certificate file needs --ca-key (or give --ca a folder from `pki init-ca`)"
        )
    # Everything is validated before the device makes a key: afterwards the key would be in
    # the device and its CSR (or certificate) nowhere.
    check_destinations([out, cert_out], force=force)
    if cert_out is not None and ca is None:
        raise UsageError("--cert-out saves the signed certificate: it needs --ca")
    if ca is not None and days < 1:
        raise UsageError(f"--days must be 1 or more (got {days})")
    authority = None
    if ca is not None:
        from provision.pki.flows import locate_ca, open_ca

        # Same CA naming as `provision pki issue`: a folder from init-ca, or cert + key files.
        files = locate_ca(ca, None, None) if ca.is_dir() else locate_ca(None, ca, ca_key)
        password = None
        if files.key_encrypted:
            password = resolve_password(
                password_file=ca_key_password_file,
                password_env=ca_key_password_env,
                prompt="CA key password",
                options=("--ca-password-file", "--ca-password-env"),
            )
        authority = open_ca(files, password)
    signed: list[bytes] = []

    def sign(csr_der: bytes) -> bytes:
        from provision.pki.certs import cert_der
        from provision.pki.profiles import Profile

        assert authority is not None
        loaded = load_csr(csr_der, "CSR from the device")
        cert = authority.sign_request(
            loaded.csr, profile=Profile.CLIENT, days=days, source="CSR from the device"
        )
        signed.append(cert_der(cert))
        return signed[-1]

    with _open(port, baud, timeout, retries, dialect, trace, fast_baud) as dev:
        report = dev.keygen_install(tag, subject, signer=sign if authority is not None else None)
    loaded = load_csr(report.csr_der, "CSR from the device")
    outputs = [OutputFile(out, csr_bytes(loaded.csr, "pem"))]
    result: dict[str, Any] = {"ok": True, "port": port, "sec_tag": tag, "csr": str(out)}
    result.update(_keygen_attestation(report.attestation))
    if report.installed is not None:
        result["installed"] = "client_cert"
        if cert_out is not None:
            from provision.pki.certs import to_pem

            outputs.append(OutputFile(cert_out, to_pem(signed[-1], "certificate")))
            result["certificate"] = str(cert_out)
    write_outputs(outputs, force=force)
    if json_out:
        print_json(result)
        return
    common.say(f"CSR for the key generated in sec_tag {tag} written to {out}")
    if "attestation" in result:
        common.say(
            f"device UUID {result['device_uuid']}: its signed attestation's CSR digest matches "
            f"(signature {result['attestation']['signature']})"
        )
    if "installed" in result:
        common.say(f"signed and installed the client_cert in sec_tag {tag}")


def _keygen_attestation(found: Attestation | None) -> dict[str, Any]:
    """The device's signed statement about the key it made (nRF91 %KEYGEN), already checked
    against the CSR by the dialect (a mismatch is a DeviceError there)."""
    from provision.dialects.nrf_attestation import SIGNATURE_NOT_CHECKED

    if found is None:
        return {}
    attestation = {**found.to_json(), "csr_digest": "matches", "signature": SIGNATURE_NOT_CHECKED}
    return {"device_uuid": found.device_uuid, "attestation": attestation}


@app.command()
def ports(json_out: bool = JSON) -> None:
    """List the serial ports of this machine."""
    from provision.transport.serial import list_ports

    found = list_ports()
    if json_out:
        print_json({"ports": found})
        return
    if not found:
        common.say("no serial ports found (a simulated device: --port sim://native)")
        return
    listing = common.table("port", "description", "hwid")
    for p in found:
        listing.add_row(
            common.safe_text(p["port"]),
            common.safe_text(p["description"]),
            common.safe_text(p["hwid"]),
        )
    common.console.print(listing)


# Implemented in cli/tls_check.py (issue 7); registered here so it sits with the device commands.
from provision.cli.tls_check import tls_check  # noqa: E402

app.command("tls-check")(tls_check)
