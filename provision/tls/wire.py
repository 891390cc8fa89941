"""How a TLS check request and its HandshakeReport travel to and from a simulated device.

Sans-IO and shared by both ends (the dialect on the host, the simulator on the device), so the
two can never disagree. Real devices have none of this: a modem proves TLS through its own
sockets (nRF SLM: AT#XSSOCKET / AT#XCONNECT), a Zephyr app through its application. These are
simulator-only extensions, documented in docs/tls-check.md:

    at-cmng       AT#XTLSCHECK=<sec_tag>,"<host>",<port>[,<tls>]   → #XTLSCHECK: <report JSON>, OK
    zephyr-shell  cred tlscheck <sec_tag> <host> <port> [<tls>]     → tlscheck: <report JSON>
    native        TLS_CHECK request / TLS_RESULT response (provision/link/messages.py)

<tls> is 0 (1.2 or 1.3, the default), 12 or 13.
"""

from __future__ import annotations

import json
import re
from typing import Any

from provision.errors import InputError
from provision.tls.report import Failure, HandshakeReport

AT_COMMAND = "AT#XTLSCHECK"
AT_PREFIX = "#XTLSCHECK:"
SHELL_COMMAND = "cred tlscheck"
SHELL_PREFIX = "tlscheck:"
# Within what 255-byte text fields (native) and one AT line comfortably carry.
MAX_HOST = 253
MAX_TEXT = 255
MAX_CHAIN = 8

_TLS_CODES = {None: 0, "1.2": 12, "1.3": 13}
_TLS_NAMES = {v: k for k, v in _TLS_CODES.items()}
_HOST = re.compile(rf"^[A-Za-z0-9._:-]{{1,{MAX_HOST}}}$")


def tls_code(tls_version: str | None) -> int:
    try:
        return _TLS_CODES[tls_version]
    except KeyError:
        raise InputError(f"unknown TLS version {tls_version!r} (valid: 1.2, 1.3)") from None


def tls_version(code: int) -> str | None:
    try:
        return _TLS_NAMES[code]
    except KeyError:
        raise InputError(f"unknown TLS version code {code} (valid: 0, 12, 13)") from None


def parse_server(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port); InputError for anything else."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\s]+):(\d+)", text.strip())
    if not match:
        raise InputError(f"server {text!r} is not HOST:PORT")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise InputError(f"port {port} out of range (1..65535)")
    check_host(host)
    return host, port


def check_host(host: str) -> str:
    # Host names go into AT strings and shell arguments: no quotes, spaces or commas.
    if not _HOST.match(host):
        raise InputError(f"host {host!r} is not a host name or IP address")
    return host


# -- at-cmng -----------------------------------------------------------------------------


def encode_at(sec_tag: int, host: str, port: int, tls: str | None = None) -> str:
    code = tls_code(tls)
    suffix = f",{code}" if code else ""
    return f'{AT_COMMAND}={sec_tag},"{check_host(host)}",{port}{suffix}'


def parse_at_args(args: str) -> tuple[int, str, int, str | None]:
    """The text after `AT#XTLSCHECK=` → (sec_tag, host, port, tls); InputError if malformed."""
    match = re.fullmatch(r'\s*(\d+)\s*,\s*"([^"]*)"\s*,\s*(\d+)\s*(?:,\s*(\d+)\s*)?', args)
    if not match:
        raise InputError('expected <sec_tag>,"<host>",<port>[,<tls>]')
    return _request(match.group(1), match.group(2), match.group(3), match.group(4))


# -- zephyr-shell -----------------------------------------------------------------------


def encode_shell(sec_tag: int, host: str, port: int, tls: str | None = None) -> str:
    code = tls_code(tls)
    suffix = f" {code}" if code else ""
    return f"{SHELL_COMMAND} {sec_tag} {check_host(host)} {port}{suffix}"


def parse_shell_args(argv: list[str]) -> tuple[int, str, int, str | None]:
    """`cred tlscheck` arguments after the subcommand → (sec_tag, host, port, tls)."""
    if len(argv) not in (3, 4) or not all(a.isdigit() for a in (argv[0], argv[2], *argv[3:])):
        raise InputError("usage: cred tlscheck <sec_tag> <host> <port> [0|12|13]")
    return _request(argv[0], argv[1], argv[2], argv[3] if len(argv) == 4 else None)


def _request(tag: str, host: str, port: str, tls: str | None) -> tuple[int, str, int, str | None]:
    port_n = int(port)
    if not 1 <= port_n <= 65535:
        raise InputError(f"port {port_n} out of range")
    return int(tag), check_host(host), port_n, tls_version(int(tls or 0))


# -- the report as one text line ----------------------------------------------------------


def report_line(prefix: str, report: HandshakeReport) -> str:
    """`<prefix> <JSON>`: JSON escapes quotes and line ends, so it is one safe line."""
    return f"{prefix} {json.dumps(report.to_dict(), sort_keys=True, separators=(',', ':'))}"


def is_report_line(line: str, prefix: str) -> bool:
    """A report line, not a shell's complaint that happens to start the same way
    ("tlscheck: command not found")."""
    text = line.strip()
    return text.startswith(prefix) and text[len(prefix) :].lstrip().startswith("{")


def parse_report_line(line: str, prefix: str) -> HandshakeReport:
    text = line.strip()
    if not text.startswith(prefix):
        raise InputError(f"not a {prefix} line")
    try:
        data = json.loads(text[len(prefix) :])
        return HandshakeReport.from_dict(data)
    except (ValueError, KeyError, TypeError):
        raise InputError(f"malformed {prefix} report") from None


# -- native TLS_RESULT fields -------------------------------------------------------------

ACCEPTED_NO, ACCEPTED_YES, ACCEPTED_UNKNOWN = 0, 1, 2


def _clip(text: str | None, limit: int = MAX_TEXT) -> str:
    data = (text or "").encode()[:limit]
    return data.decode(errors="ignore")


_TEXTS = ("version", "cipher", "accepted_as", "evidence", "detail")


def result_size(fields: dict[str, Any]) -> int:
    """Payload bytes of TLS_RESULT with these fields (docs/protocol.md)."""
    texts = sum(1 + len(fields[k].encode()) for k in _TEXTS)
    return 7 + texts + 1 + sum(1 + len(c.encode()) for c in fields["chain"])


def result_fields(report: HandshakeReport, max_payload: int | None = None) -> dict[str, Any]:
    """A report → TLS_RESULT field values: texts clipped to their u8 length and, when
    `max_payload` (the host's limit) is given, the chain and long texts shortened to fit."""
    accepted = {False: ACCEPTED_NO, True: ACCEPTED_YES, None: ACCEPTED_UNKNOWN}
    fields: dict[str, Any] = {
        "sec_tag": report.sec_tag or 0,
        "failure": int(report.failure),
        "server_verified": int(report.server_verified),
        "client_accepted": accepted[report.client_accepted],
        "version": _clip(report.version),
        "cipher": _clip(report.cipher),
        "accepted_as": _clip(report.accepted_as),
        "evidence": _clip(report.evidence),
        "detail": _clip(report.detail),
        "chain": tuple(_clip(s) for s in report.server_chain[:MAX_CHAIN]),
    }
    if max_payload is None:
        return fields
    # Leaf and root say the most; then every text gets shorter until the answer fits.
    for limit in (MAX_TEXT, 96, 48, 24, 0):
        if result_size(fields) <= max_payload:
            break
        chain = fields["chain"]
        if len(chain) > 2:
            chain = (chain[0], chain[-1])
        fields["chain"] = tuple(_clip(c, limit) for c in chain)
        for key in ("accepted_as", "evidence", "detail"):
            fields[key] = _clip(fields[key], limit)
    return fields


def report_from_result(server: str, fields: Any) -> HandshakeReport:
    """TLS_RESULT (an object with the fields above) → HandshakeReport."""
    accepted = {ACCEPTED_NO: False, ACCEPTED_YES: True}.get(int(fields.client_accepted))
    try:
        failure = Failure(int(fields.failure))
    except ValueError:
        failure = Failure.HANDSHAKE_FAILED
    return HandshakeReport(
        server=server,
        failure=failure,
        detail=fields.detail,
        version=fields.version or None,
        cipher=fields.cipher or None,
        server_chain=tuple(fields.chain),
        server_verified=bool(fields.server_verified),
        client_accepted=accepted,
        accepted_as=fields.accepted_as or None,
        evidence=fields.evidence,
        sec_tag=int(fields.sec_tag),
    )
