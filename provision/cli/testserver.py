"""`provision testserver`: a mutual-TLS server on 127.0.0.1 that reports each client."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from provision.cli import common
from provision.cli.common import PASSWORD_ENV_HELP, PASSWORD_FILE_HELP, print_json, resolve_password
from provision.errors import ExitCode, InputError
from provision.inputs import read_input

app = typer.Typer(no_args_is_help=True)


def _root_file(path: Path) -> Path:
    """--ca names a folder in `pki` and `device keygen`; here its root certificate is meant."""
    if not path.is_dir():
        return path
    if not (path / "ca.crt").is_file():
        raise InputError(f"{path}: a folder without ca.crt; give the root CA certificate file")
    return path / "ca.crt"


@app.command("testserver")
def testserver(
    ca: list[Path] = typer.Option(
        ...,
        "--ca",
        help="Root CA(s) a client certificate must chain to (PEM or DER; repeat), "
        "or a CA folder from `pki init-ca` (its ca.crt).",
    ),
    cert: Path = typer.Option(..., "--cert", help="Server certificate (PEM, chain allowed)."),
    key: Path = typer.Option(..., "--key", help="Server private key (PEM or DER)."),
    password_file: Path | None = typer.Option(None, "--password-file", help=PASSWORD_FILE_HELP),
    password_env: str | None = typer.Option(None, "--password-env", help=PASSWORD_ENV_HELP),
    port: int = typer.Option(8443, "--port", min=0, max=65535, help="TCP port (0: any free)."),
    once: bool = typer.Option(False, "--once", help="Exit after the first client."),
    tls: str | None = typer.Option(
        None, "--tls", help="Allow only this TLS version: 1.2 or 1.3 (default: both)."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """A mutual-TLS server on 127.0.0.1: requires and verifies client certificates, prints
    each client's subject and answers accepted clients with `ACCEPTED <subject>`."""
    # The TLS stack and cryptography load here: `testserver --help` needs neither.
    from provision.pki.keys import key_is_encrypted, load_private_key
    from provision.tls.material import TLS_VERSIONS, TLSMaterial, TLSSetupError
    from provision.tls.server import ClientEvent, TestServer

    if tls is not None and tls not in TLS_VERSIONS:
        raise typer.BadParameter(f"{tls!r} (valid: {', '.join(TLS_VERSIONS)})", param_hint="--tls")
    roots = tuple(read_input(_root_file(path), "root CA") for path in ca)
    key_data = read_input(key, "server key")
    password = resolve_password(
        password_file=password_file,
        password_env=password_env,
        prompt="Server key password" if key_is_encrypted(key_data) else None,
    )
    # The operator's own key file: a wrong password or a damaged key is bad input (exit 3),
    # not a failed handshake.
    load_private_key(key_data, password, str(key))
    material = TLSMaterial(roots, read_input(cert, "server certificate"), key_data, password)
    failures = 0

    def report(event: ClientEvent) -> None:
        nonlocal failures
        failures += 0 if event.accepted else 1
        if json_out:
            print_json({"event": "client", **event.to_dict()})
        elif event.accepted:
            # A client's subject is anyone's text: printed literally (PlainConsole).
            common.console.print(
                f"accepted {event.peer}: {event.subject} ({event.version}, {event.cipher})"
            )
        else:
            common.console.print(f"rejected {event.peer}: {event.reason}")

    try:
        server = TestServer(material, port=port, tls_version=tls)
    except TLSSetupError as err:
        # The server's own certificate, key and roots are the operator's input files: if
        # they cannot be loaded (garbage, a key that does not match the certificate) that is
        # bad input (exit 3), not a failed handshake (exit 10), which no client was part of.
        raise InputError(f"server credentials: {err.message}", code=err.code) from None
    with server:
        versions = f"TLS {tls}" if tls else "TLS 1.2 and 1.3"
        if json_out:
            print_json({"event": "listening", "address": server.address, "tls": tls})
        else:
            typer.echo(f"listening on {server.address} ({versions}, client certificates required)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve(report, once=once)
    if once and failures:
        raise typer.Exit(int(ExitCode.TLS))
