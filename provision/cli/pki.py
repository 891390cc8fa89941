"""`provision pki`: create CAs, issue server and device certificates, make and sign CSRs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from provision.cli import common
from provision.cli.common import PASSWORD_ENV_HELP, PASSWORD_FILE_HELP, print_json, resolve_password
from provision.errors import InputError

if TYPE_CHECKING:
    # Each command imports the PKI (cryptography) when it runs: `pki --help` loads none of it.
    from provision.pki import flows
    from provision.pki.authority import Authority
    from provision.pki.keys import KeyType

app = typer.Typer(no_args_is_help=True, help="Create CAs, issue certificates, make and sign CSRs.")
issue_app = typer.Typer(no_args_is_help=True, help="Issue a key and certificate signed by a CA.")
app.add_typer(issue_app, name="issue")

KEY_TYPE_HELP = "Key type: p256 (default), p384, rsa2048, rsa3072, rsa4096, ed25519."
FORMAT_HELP = "Output encoding: pem or der."


def _key_type(value: str) -> KeyType:
    from provision.pki.keys import KeyType

    try:
        return KeyType(value.lower())
    except ValueError:
        valid = ", ".join(k.value for k in KeyType)
        raise typer.BadParameter(f"{value!r} (valid: {valid})", param_hint="--key-type") from None


def _format(value: str) -> str:
    if value.lower() not in ("pem", "der"):
        raise typer.BadParameter(f"{value!r} (valid: pem, der)", param_hint="--format")
    return value.lower()


def _out_password(
    encrypt: bool, password_file: Path | None, password_env: str | None
) -> bytes | None:
    """Password for new private keys: only when asked for (--encrypt or a password source)."""
    if not (encrypt or password_file or password_env):
        return None
    return resolve_password(
        password_file=password_file,
        password_env=password_env,
        prompt="Password for the new private key",
        confirm=True,
    )


def _ca_password(
    no_password: bool, encrypt: bool, password_file: Path | None, password_env: str | None
) -> bytes | None:
    """A new CA key is encrypted unless --no-password opts out (as step CLI does)."""
    if no_password:
        if encrypt or password_file or password_env:
            raise typer.BadParameter(
                "leaves the keys unencrypted: not with --encrypt, --password-file or "
                "--password-env",
                param_hint="--no-password",
            )
        return None
    try:
        return resolve_password(
            password_file=password_file,
            password_env=password_env,
            prompt="Password for the new CA key",
            confirm=True,
        )
    except InputError as err:
        if "no terminal" not in err.message:
            raise
        raise InputError(f"{err.message}; or --no-password to leave it unencrypted") from None


def _open_ca(
    ca: Path | None,
    ca_cert: Path | None,
    ca_key: Path | None,
    ca_password_file: Path | None,
    ca_password_env: str | None,
) -> Authority:
    from provision.pki import flows

    files = flows.locate_ca(ca, ca_cert, ca_key)
    password = resolve_password(
        password_file=ca_password_file,
        password_env=ca_password_env,
        prompt="CA key password" if files.key_encrypted else None,
        options=("--ca-password-file", "--ca-password-env"),
    )
    return flows.open_ca(files, password)


def _render(result: flows.FlowResult, json_out: bool) -> None:
    if json_out:
        print_json(result.to_json())
        return
    rows = common.table("file", "kind", "subject", "expires", "sha256")
    for w in result.written:
        s = w.summary
        kind = w.kind + (" (encrypted)" if w.encrypted else "")
        rows.add_row(
            str(w.path),
            kind,
            s.subject if s else "",
            f"{s.not_after:%Y-%m-%d}" if s else "",
            s.sha256_fingerprint[:16] if s and w.kind == "certificate" else "",
        )
    common.console.print(rows)
    for note in result.notes:
        common.console.print(f"note: {note}")


# Shared option declarations (typer reads defaults from these objects).
_OUT_DIR = typer.Option(Path("."), "--out-dir", "-o", help="Directory to write into.")
_KEY_TYPE = typer.Option("p256", "--key-type", help=KEY_TYPE_HELP)
_FORMAT = typer.Option("pem", "--format", help=FORMAT_HELP)
_ENCRYPT = typer.Option(
    False, "--encrypt", help="Encrypt new private keys (PKCS#8); prompts unless a source is given."
)
_PW_FILE = typer.Option(None, "--password-file", help="New key password: " + PASSWORD_FILE_HELP)
_PW_ENV = typer.Option(None, "--password-env", help="New key password: " + PASSWORD_ENV_HELP)
_FORCE = typer.Option(False, "--force", help="Overwrite existing key and certificate files.")
_ED25519 = typer.Option(
    False, "--allow-ed25519", help="Permit Ed25519 keys (few device TLS stacks support them)."
)
_JSON = typer.Option(False, "--json", help="Print what was written as JSON.")
_CA = typer.Option(
    None, "--ca", help="CA directory from init-ca (uses its intermediate if it has one)."
)
_CA_CERT = typer.Option(None, "--ca-cert", help="CA certificate (PEM/DER; parents may follow).")
_CA_KEY = typer.Option(None, "--ca-key", help="CA private key.")
_CA_PW_FILE = typer.Option(
    None, "--ca-password-file", help="CA key password: " + PASSWORD_FILE_HELP
)
_CA_PW_ENV = typer.Option(None, "--ca-password-env", help="CA key password: " + PASSWORD_ENV_HELP)


@app.command("init-ca")
def init_ca(
    out_dir: Path = _OUT_DIR,
    common_name: str = typer.Option("provision Root CA", "--cn", help="Root CA common name."),
    organization: str | None = typer.Option(None, "--org", help="Organization (O=)."),
    key_type: str = _KEY_TYPE,
    days: int = typer.Option(3650, "--days", help="Root validity in days."),
    intermediate: str | None = typer.Option(
        None, "--intermediate", help="Also create an intermediate CA with this common name."
    ),
    intermediate_days: int = typer.Option(
        1825, "--intermediate-days", help="Intermediate validity in days."
    ),
    path_length: int = typer.Option(
        0, "--path-length", min=0, help="Intermediate's path length (CAs allowed below it)."
    ),
    fmt: str = _FORMAT,
    encrypt: bool = _ENCRYPT,
    password_file: Path | None = _PW_FILE,
    password_env: str | None = _PW_ENV,
    allow_ed25519: bool = _ED25519,
    force: bool = _FORCE,
    json_out: bool = _JSON,
    no_password: bool = typer.Option(
        False,
        "--no-password",
        help="Leave the CA keys unencrypted. Without it they are encrypted: the password "
        "comes from --password-file, --password-env or a prompt.",
    ),
) -> None:
    """Create a root CA (ca.crt, ca.key) and optionally an intermediate (intermediate.crt/key).

    The CA keys are encrypted (PKCS#8) unless --no-password says otherwise."""
    from provision.pki import flows

    result = flows.init_ca(
        out_dir,
        common_name=common_name,
        organization=organization,
        key_type=_key_type(key_type),
        days=days,
        intermediate_cn=intermediate,
        intermediate_days=intermediate_days,
        path_length=path_length,
        fmt=_format(fmt),
        password=_ca_password(no_password, encrypt, password_file, password_env),
        allow_ed25519=allow_ed25519,
        force=force,
    )
    _render(result, json_out)


@issue_app.command("server")
def issue_server(
    san: list[str] = typer.Option(..., "--san", help="DNS name or IP address (repeat)."),
    ca: Path | None = _CA,
    ca_cert: Path | None = _CA_CERT,
    ca_key: Path | None = _CA_KEY,
    ca_password_file: Path | None = _CA_PW_FILE,
    ca_password_env: str | None = _CA_PW_ENV,
    out_dir: Path = _OUT_DIR,
    name: str = typer.Option("server", "--name", help="Base name of the output files."),
    common_name: str | None = typer.Option(None, "--cn", help="Subject CN (default: first SAN)."),
    key_type: str = _KEY_TYPE,
    days: int = typer.Option(365, "--days", help="Certificate validity in days."),
    fmt: str = _FORMAT,
    encrypt: bool = _ENCRYPT,
    password_file: Path | None = _PW_FILE,
    password_env: str | None = _PW_ENV,
    allow_ed25519: bool = _ED25519,
    force: bool = _FORCE,
    json_out: bool = _JSON,
) -> None:
    """Server key and certificate: SAN names/IPs, EKU serverAuth."""
    from provision.pki import flows

    kt, f = _key_type(key_type), _format(fmt)
    authority = _open_ca(ca, ca_cert, ca_key, ca_password_file, ca_password_env)
    result = flows.issue_server(
        authority,
        out_dir,
        names=san,
        name=name,
        common_name=common_name,
        key_type=kt,
        days=days,
        fmt=f,
        password=_out_password(encrypt, password_file, password_env),
        allow_ed25519=allow_ed25519,
        force=force,
    )
    _render(result, json_out)


def issue_client(
    device_id: str = typer.Option(..., "--device-id", help="Device id: becomes the subject CN."),
    ca: Path | None = _CA,
    ca_cert: Path | None = _CA_CERT,
    ca_key: Path | None = _CA_KEY,
    ca_password_file: Path | None = _CA_PW_FILE,
    ca_password_env: str | None = _CA_PW_ENV,
    out_dir: Path = _OUT_DIR,
    name: str | None = typer.Option(None, "--name", help="Base name of files (default: id)."),
    organization: str | None = typer.Option(None, "--org", help="Organization (O=)."),
    key_type: str = _KEY_TYPE,
    days: int = typer.Option(365, "--days", help="Certificate validity in days."),
    fmt: str = _FORMAT,
    encrypt: bool = _ENCRYPT,
    password_file: Path | None = _PW_FILE,
    password_env: str | None = _PW_ENV,
    allow_ed25519: bool = _ED25519,
    force: bool = _FORCE,
    json_out: bool = _JSON,
) -> None:
    """Device key and certificate: CN = device id, EKU clientAuth, AKI/SKI."""
    from provision.pki import flows

    kt, f = _key_type(key_type), _format(fmt)
    authority = _open_ca(ca, ca_cert, ca_key, ca_password_file, ca_password_env)
    result = flows.issue_client(
        authority,
        out_dir,
        device_id=device_id,
        name=name,
        organization=organization,
        key_type=kt,
        days=days,
        fmt=f,
        password=_out_password(encrypt, password_file, password_env),
        allow_ed25519=allow_ed25519,
        force=force,
    )
    _render(result, json_out)


issue_app.command("client")(issue_client)
issue_app.command("device", help="Alias of `issue client`.")(issue_client)


@app.command("csr")
def csr(
    common_name: str = typer.Option(..., "--cn", help="Subject common name."),
    san: list[str] = typer.Option([], "--san", help="DNS name or IP for the request (repeat)."),
    out_dir: Path = _OUT_DIR,
    name: str = typer.Option("server", "--name", help="Base name: NAME.key and NAME.csr."),
    organization: str | None = typer.Option(None, "--org", help="Organization (O=)."),
    key_type: str = _KEY_TYPE,
    fmt: str = _FORMAT,
    encrypt: bool = _ENCRYPT,
    password_file: Path | None = _PW_FILE,
    password_env: str | None = _PW_ENV,
    allow_ed25519: bool = _ED25519,
    force: bool = _FORCE,
    json_out: bool = _JSON,
) -> None:
    """Create a private key and a certificate signing request for it."""
    from provision.pki import flows

    result = flows.make_csr(
        out_dir,
        common_name=common_name,
        name=name,
        san=san,
        organization=organization,
        key_type=_key_type(key_type),
        fmt=_format(fmt),
        password=_out_password(encrypt, password_file, password_env),
        allow_ed25519=allow_ed25519,
        force=force,
    )
    _render(result, json_out)


@app.command("sign-csr")
def sign_csr(
    csr_file: Path = typer.Argument(..., help="The CSR (PEM or DER)."),
    ca: Path | None = _CA,
    ca_cert: Path | None = _CA_CERT,
    ca_key: Path | None = _CA_KEY,
    ca_password_file: Path | None = _CA_PW_FILE,
    ca_password_env: str | None = _CA_PW_ENV,
    out: Path | None = typer.Option(None, "--out", help="Certificate file (default: CSR.crt)."),
    profile: str = typer.Option("client", "--profile", help="client (device) or server."),
    device_id: str | None = typer.Option(
        None, "--device-id", help="Expected device id: the CSR's CN must match (or is set)."
    ),
    san: list[str] = typer.Option([], "--san", help="Server profile: DNS names/IPs (repeat)."),
    allow_key_type: list[str] = typer.Option(
        [],
        "--allow-key-type",
        help="Accept only these key types (repeat; default: all but ed25519).",
    ),
    days: int = typer.Option(365, "--days", help="Certificate validity in days."),
    fmt: str = _FORMAT,
    force: bool = _FORCE,
    json_out: bool = _JSON,
) -> None:
    """Sign a CSR after policy checks: key type allowed, signature verifies, subject matches."""
    from provision.pki import flows
    from provision.pki.profiles import Profile

    if profile not in (Profile.CLIENT.value, Profile.SERVER.value):
        raise typer.BadParameter(f"{profile!r} (valid: client, server)", param_hint="--profile")
    allowed = [_key_type(k) for k in allow_key_type] or None
    f = _format(fmt)
    authority = _open_ca(ca, ca_cert, ca_key, ca_password_file, ca_password_env)
    if out is None:
        out = csr_file.with_name(csr_file.stem + (".crt" if f == "pem" else ".crt.der"))
    result = flows.sign_csr(
        authority,
        csr_file,
        out,
        profile=Profile(profile),
        device_id=device_id,
        san=san,
        days=days,
        allowed_key_types=allowed,
        fmt=f,
        force=force,
    )
    _render(result, json_out)
