"""File-level PKI flows: one function per `provision pki` command.

Each reads its inputs, builds everything in memory, then writes all outputs at once
(files.write_outputs): a refusal or an error leaves no file behind. Results list what was
written, never key material.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provision.errors import InputError, UsageError
from provision.pki.authority import CSR_KEY_TYPES, Authority, create_root_ca, load_authority
from provision.pki.certs import CertSummary, summarize
from provision.pki.csr import create_csr, csr_bytes, load_csr
from provision.pki.files import KEY_MODE, OutputFile, read_input, write_outputs
from provision.pki.keys import (
    DEFAULT_KEY_TYPE,
    KeyType,
    PrivateKey,
    key_is_encrypted,
    serialize_private_key,
)
from provision.pki.profiles import Profile

Format = Literal["pem", "der"]

ROOT_NAME = "ca"
INTERMEDIATE_NAME = "intermediate"


@dataclass(frozen=True)
class Written:
    path: Path
    kind: str  # certificate, private_key, chain, csr
    summary: CertSummary | None = None
    encrypted: bool = False


@dataclass(frozen=True)
class FlowResult:
    written: tuple[Written, ...]
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "written": [
                {
                    "path": str(w.path),
                    "kind": w.kind,
                    "encrypted": w.encrypted,
                    **({"certificate": w.summary.to_json()} if w.summary else {}),
                }
                for w in self.written
            ],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class CAFiles:
    """Where a CA's certificate, key and parent certificates live."""

    cert: Path
    key: Path
    parents: tuple[Path, ...] = ()

    @property
    def key_encrypted(self) -> bool:
        return key_is_encrypted(read_input(self.key, "CA key"))


def _suffix(fmt: Format) -> str:
    return "" if fmt == "pem" else ".der"


def _cert_bytes(cert: x509.Certificate, fmt: Format) -> bytes:
    enc = serialization.Encoding.PEM if fmt == "pem" else serialization.Encoding.DER
    return cert.public_bytes(enc)


def _check_format(fmt: str) -> Format:
    if fmt not in ("pem", "der"):
        raise InputError(f"unknown output format {fmt!r} (pem or der)")
    return "pem" if fmt == "pem" else "der"


def _check_out_dir(out_dir: Path) -> Path:
    # A missing folder is created when the outputs are written (files.write_outputs).
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: not a directory")
    return out_dir


def _check_name(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or "\\" in name:
        raise InputError(f"output name {name!r} must be a plain file name")
    return name


class _Outputs:
    def __init__(self, fmt: Format, password: bytes | None) -> None:
        self.fmt = fmt
        self.password = password
        self.files: list[OutputFile] = []
        self.written: list[Written] = []

    def key(self, path: Path, key: PrivateKey) -> None:
        data = serialize_private_key(key, encoding=self.fmt, password=self.password)
        self.files.append(OutputFile(path, data, KEY_MODE, is_key=True))
        self.written.append(Written(path, "private_key", encrypted=self.password is not None))

    def cert(self, path: Path, cert: x509.Certificate) -> None:
        self.files.append(OutputFile(path, _cert_bytes(cert, self.fmt)))
        self.written.append(Written(path, "certificate", summarize(cert)))

    def chain(self, path: Path, certs: Sequence[x509.Certificate]) -> None:
        # A chain is always PEM: DER holds one certificate.
        data = b"".join(_cert_bytes(c, "pem") for c in certs)
        self.files.append(OutputFile(path, data))
        self.written.append(Written(path, "chain", summarize(certs[0])))

    def raw(self, path: Path, data: bytes, kind: str) -> None:
        self.files.append(OutputFile(path, data))
        self.written.append(Written(path, kind))

    def commit(self, force: bool, notes: Sequence[str] = ()) -> FlowResult:
        write_outputs(self.files, force=force)
        return FlowResult(tuple(self.written), tuple(notes))


def init_ca(
    out_dir: Path,
    *,
    common_name: str = "provision Root CA",
    organization: str | None = None,
    key_type: KeyType = DEFAULT_KEY_TYPE,
    days: int = 3650,
    intermediate_cn: str | None = None,
    intermediate_days: int = 1825,
    path_length: int = 0,
    fmt: str = "pem",
    password: bytes | None = None,
    allow_ed25519: bool = False,
    force: bool = False,
) -> FlowResult:
    """Root CA (ca.crt, ca.key) and, with `intermediate_cn`, an intermediate signed by it."""
    fmt = _check_format(fmt)
    _check_out_dir(out_dir)
    # The root may sign only the intermediate level below it when there is one.
    root_path_len = path_length + 1 if intermediate_cn else None
    root = create_root_ca(
        common_name,
        key_type=key_type,
        days=days,
        organization=organization,
        path_length=root_path_len,
        allow_ed25519=allow_ed25519,
    )
    out = _Outputs(fmt, password)
    sfx = _suffix(fmt)
    out.cert(out_dir / f"{ROOT_NAME}.crt{sfx}", root.cert)
    out.key(out_dir / f"{ROOT_NAME}.key{sfx}", root.key)
    if intermediate_cn:
        inter = root.issue_intermediate(
            intermediate_cn,
            key_type=key_type,
            days=intermediate_days,
            path_length=path_length,
            organization=organization,
            allow_ed25519=allow_ed25519,
        )
        out.cert(out_dir / f"{INTERMEDIATE_NAME}.crt{sfx}", inter.cert)
        out.key(out_dir / f"{INTERMEDIATE_NAME}.key{sfx}", inter.key)
    return out.commit(force)


def locate_ca(
    ca_dir: Path | None, ca_cert: Path | None = None, ca_key: Path | None = None
) -> CAFiles:
    """The signing CA: explicit --ca-cert/--ca-key, or the intermediate (else root) of a
    directory made by init_ca."""
    if ca_cert is not None or ca_key is not None:
        if ca_cert is None or ca_key is None:
            raise UsageError("give both --ca-cert and --ca-key")
        return CAFiles(ca_cert, ca_key)
    if ca_dir is None:
        raise UsageError("name the CA: --ca DIR (from init-ca) or --ca-cert and --ca-key")
    if ca_dir.is_file():
        raise InputError(
            f"{ca_dir}: --ca takes the folder from `pki init-ca`; "
            "for certificate and key files give --ca-cert and --ca-key"
        )
    if not ca_dir.is_dir():
        raise InputError(f"{ca_dir}: CA directory not found")
    for sfx in ("", ".der"):
        inter = ca_dir / f"{INTERMEDIATE_NAME}.crt{sfx}"
        if inter.exists():
            return CAFiles(
                inter, ca_dir / f"{INTERMEDIATE_NAME}.key{sfx}", (ca_dir / f"{ROOT_NAME}.crt{sfx}",)
            )
        root = ca_dir / f"{ROOT_NAME}.crt{sfx}"
        if root.exists():
            return CAFiles(root, ca_dir / f"{ROOT_NAME}.key{sfx}")
    raise InputError(f"{ca_dir}: no ca.crt or intermediate.crt (run `provision pki init-ca`)")


def open_ca(files: CAFiles, password: bytes | None) -> Authority:
    cert_data = read_input(files.cert, "CA certificate")
    for parent in files.parents:
        data = read_input(parent, "CA certificate")
        if b"-----BEGIN" not in data or b"-----BEGIN" not in cert_data:
            from provision.pki.certs import to_pem

            cert_data = to_pem(cert_data, str(files.cert)) + to_pem(data, str(parent))
        else:
            cert_data = cert_data + data
    return load_authority(
        cert_data,
        read_input(files.key, "CA key"),
        password,
        cert_source=str(files.cert),
        key_source=str(files.key),
    )


def _chain_out(out: _Outputs, path: Path, ca: Authority, cert: x509.Certificate) -> None:
    """What a TLS peer must send, the leaf and every CA below the root: only when there is
    an intermediate (a root-signed leaf needs no chain file)."""
    intermediates = [c for c in ca.chain if c.issuer != c.subject]
    if intermediates:
        out.chain(path, [cert, *intermediates])


def _leaf_outputs(
    ca: Authority,
    out: _Outputs,
    out_dir: Path,
    name: str,
    key: PrivateKey | None,
    cert: x509.Certificate,
) -> None:
    sfx = _suffix(out.fmt)
    if key is not None:
        out.key(out_dir / f"{name}.key{sfx}", key)
    out.cert(out_dir / f"{name}.crt{sfx}", cert)
    _chain_out(out, out_dir / f"{name}.chain.pem", ca, cert)


def issue_server(
    ca: Authority,
    out_dir: Path,
    *,
    names: Sequence[str],
    name: str = "server",
    common_name: str | None = None,
    key_type: KeyType = DEFAULT_KEY_TYPE,
    days: int = 365,
    fmt: str = "pem",
    password: bytes | None = None,
    allow_ed25519: bool = False,
    force: bool = False,
) -> FlowResult:
    fmt = _check_format(fmt)
    _check_out_dir(out_dir)
    _check_name(name)
    key, cert = ca.issue_server(
        names, key_type=key_type, days=days, common_name_=common_name, allow_ed25519=allow_ed25519
    )
    out = _Outputs(fmt, password)
    _leaf_outputs(ca, out, out_dir, name, key, cert)
    return out.commit(force)


def issue_client(
    ca: Authority,
    out_dir: Path,
    *,
    device_id: str,
    name: str | None = None,
    organization: str | None = None,
    key_type: KeyType = DEFAULT_KEY_TYPE,
    days: int = 365,
    fmt: str = "pem",
    password: bytes | None = None,
    allow_ed25519: bool = False,
    force: bool = False,
) -> FlowResult:
    fmt = _check_format(fmt)
    _check_out_dir(out_dir)
    key, cert = ca.issue_client(
        device_id,
        key_type=key_type,
        days=days,
        organization=organization,
        allow_ed25519=allow_ed25519,
    )
    out = _Outputs(fmt, password)
    _leaf_outputs(ca, out, out_dir, _check_name(name or device_id), key, cert)
    return out.commit(force)


def make_csr(
    out_dir: Path,
    *,
    common_name: str,
    name: str,
    san: Sequence[str] = (),
    organization: str | None = None,
    key_type: KeyType = DEFAULT_KEY_TYPE,
    fmt: str = "pem",
    password: bytes | None = None,
    allow_ed25519: bool = False,
    force: bool = False,
) -> FlowResult:
    """A key and a CSR for it (name.key, name.csr): the server_key.pem → server.csr path."""
    from provision.pki.authority import check_key_type
    from provision.pki.keys import generate_key

    fmt = _check_format(fmt)
    _check_out_dir(out_dir)
    _check_name(name)
    if not common_name:
        raise InputError("a CSR needs a common name (--cn)")
    key = generate_key(check_key_type(key_type, allow_ed25519))
    csr = create_csr(key, common_name, san=san, organization=organization)
    out = _Outputs(fmt, password)
    sfx = _suffix(fmt)
    out.key(out_dir / f"{name}.key{sfx}", key)
    out.raw(out_dir / f"{name}.csr{sfx}", csr_bytes(csr, fmt), "csr")
    return out.commit(force)


def sign_csr(
    ca: Authority,
    csr_path: Path,
    out_path: Path,
    *,
    profile: Profile = Profile.CLIENT,
    device_id: str | None = None,
    san: Sequence[str] = (),
    days: int = 365,
    allowed_key_types: Sequence[KeyType] | None = None,
    fmt: str = "pem",
    force: bool = False,
) -> FlowResult:
    """Sign a CSR under policy (authority.sign_request); write the certificate (and chain)."""
    fmt = _check_format(fmt)
    loaded = load_csr(read_input(csr_path, "CSR"), str(csr_path))
    cert = ca.sign_request(
        loaded.csr,
        profile=profile,
        device_id=device_id,
        san=san,
        days=days,
        allowed_key_types=CSR_KEY_TYPES if allowed_key_types is None else tuple(allowed_key_types),
        source=str(csr_path),
    )
    out = _Outputs(fmt, None)
    out.cert(out_path, cert)
    base = out_path.name
    for ext in (".der", ".crt", ".cer", ".pem"):
        base = base.removesuffix(ext)
    _chain_out(out, out_path.with_name(base + ".chain.pem"), ca, cert)
    notes = []
    if loaded.repaired_null_parameters:
        notes.append(
            "the CSR carried NULL ECDSA parameters (older modem firmware); accepted after "
            "the signature verified"
        )
    return out.commit(force, notes)
