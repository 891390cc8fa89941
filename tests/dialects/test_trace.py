"""`provision device … --trace`: every frame or line on stderr, timestamped and decoded, and
never a key byte, PSK or password — whatever the dialect, the encoding, or the device's echo.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from provision.dialects.at_cmng import trace_command, trace_reply
from provision.dialects.zephyr_shell import trace_line, trace_output
from provision.pki.pem import pem_blocks
from provision.trace import TraceLog

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
PASSWORD = (FIXTURES / "device-encrypted.pw").read_text().splitlines()[0]
STAMP = re.compile(r"^ +\d+\.\d{4} (tx|rx|--) ")


def text_forms(pem: bytes, der: bytes) -> list[str]:
    """Every form DER/PEM data could take in a trace: PEM lines, DER as hex (plain, upper, as
    a hex dump), base64 of the DER and of the PEM (the shell's `cred buf` data)."""
    return [
        *(ln.decode() for ln in pem.splitlines() if not ln.startswith(b"-----")),
        der.hex(),
        der.hex().upper(),
        der.hex(" "),
        base64.b64encode(der).decode(),
        base64.b64encode(pem).decode(),
    ]


def file_forms(pem_file: Path) -> list[str]:
    pem = pem_file.read_bytes()
    blocks = pem_blocks(pem, str(pem_file))
    return text_forms(pem, b"".join(b.der for b in blocks))


# A key shares structure with public data (the EC algorithm identifier, its public key is in
# the certificate): a fragment that also occurs there reveals nothing and is not a leak.
PUBLIC = "\n".join(
    form for name in ("root-ca.pem", "device.pem") for form in file_forms(FIXTURES / name)
)


def assert_no_leak(trace: str, forms: list[str], window: int = 16) -> None:
    checked = 0
    for form in forms:
        for i in range(0, max(1, len(form) - window), 3):
            piece = form[i : i + window]
            if piece in PUBLIC:
                continue
            checked += 1
            assert piece not in trace, f"secret fragment {i} of a form shows in the trace"
    assert checked > 100  # the check looked at the key, not only at shared structure


def items(key: str, password: bool) -> list[str]:
    args = [
        "--tag", "42", "--root-ca", str(FIXTURES / "root-ca.pem"),
        "--client-cert", str(FIXTURES / "device.pem"), "--client-key", str(FIXTURES / key),
    ]  # fmt: skip
    if password:
        args += ["--key-password-file", str(FIXTURES / "device-encrypted.pw")]
    return args


CASES = [
    # (dialect, sim URL options, key file, password, encoding)
    ("native", "", "device-encrypted.key", True, "compact"),
    ("native", "", "device.key", False, "keep"),
    ("at-cmng", "", "device-encrypted.key", True, "compact"),
    ("at-cmng", "echo=1", "device-encrypted.key", True, "keep"),
    ("at-cmng", "echo=1", "device.key", False, "compact"),
    ("zephyr-shell", "", "device.key", False, "compact"),
    ("zephyr-shell", "", "device.key", False, "keep"),
]


@pytest.mark.parametrize(("dialect", "opts", "key", "password", "encoding"), CASES)
def test_write_trace_decodes_and_redacts(cli, dialect, opts, key, password, encoding):
    port = f"sim://{dialect}?{opts}" if opts else f"sim://{dialect}"
    result = cli(
        ["device", "write", "--port", port, "--dialect", dialect, "--trace",
         "--encoding", encoding, "--json", *items(key, password)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    trace = result.stderr
    lines = trace.splitlines()
    assert lines and all(STAMP.match(ln) or ln.startswith(" " * 13) for ln in lines)
    assert "{" in result.stdout and "tx" not in result.stdout.split()  # trace only on stderr
    # The key's bytes and the password never appear, in any form.
    assert_no_leak(trace, file_forms(FIXTURES / key))
    assert PASSWORD not in trace
    # ...but the trace says what happened.
    if dialect == "native":
        assert (
            "tx seq=" in trace
            and (" DATA {" in trace or " DATA_LEAN {" in trace)
            and "bytes redacted>" in trace
        )
        assert re.search(r"^ {13}0000  01 ", trace, re.M)  # hex dump of a frame body
        assert "rx seq=" in trace and "COMMITTED" in trace
    elif dialect == "at-cmng":
        assert '"<passwd redacted>"' in trace if password else "passwd" not in trace
        assert "# write root_ca to sec_tag 42" in trace
        assert re.search(r'tx AT%CMNG=0,42,2,"<\d+ bytes redacted>"', trace)
        assert "-----BEGIN CERTIFICATE-----" in trace  # certificates are shown
        assert "rx OK   # success" in trace
    else:
        assert "tx cred buf <" in trace and "of a client_key or PSK into the buffer" in trace
        assert "# store the buffer as client_key in sec_tag 42" in trace
        assert "rx Stored " in trace


def test_env_var_still_traces_and_list_is_traced(cli, tmp_path):
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    result = cli(["device", "write", "--port", port, *items("device.key", False)])
    assert result.exit_code == 0 and "tx seq=" not in result.stderr  # off by default
    result = cli(["device", "list", "--port", port], env={"PROVISION_TRACE": "1"})
    assert result.exit_code == 0, result.output
    assert " LIST " in result.stderr or "LIST_PAGE" in result.stderr


def test_at_command_redaction_rules():
    shown, meaning, secrets = trace_command(b'AT%CMNG=0,7,3,"00112233445566778899"\r\n')
    assert shown == 'AT%CMNG=0,7,3,"<20 bytes redacted>"' and meaning == "write psk to sec_tag 7"
    assert secrets == [b"00112233445566778899"]
    shown, _, secrets = trace_command(
        b'AT%CMNG=0,7,2,"-----BEGIN X-----\nQUJD\n-----END X-----","pw"\r\n'
    )
    assert shown == 'AT%CMNG=0,7,2,"<38 bytes redacted>","<passwd redacted>"'
    assert b"pw" in secrets and b"QUJD" in secrets
    identity = b'AT%CMNG=0,7,4,"dev-0001"\r\n'
    assert trace_command(identity)[0] == 'AT%CMNG=0,7,4,"dev-0001"'  # not a secret
    assert trace_command(b"AT%CMNG=3,7,2\r\n")[1] == "delete client_key of sec_tag 7"
    assert trace_reply("+CME ERROR: 518")[1].startswith("not allowed in active state")
    assert trace_reply('-----END EC PRIVATE KEY-----","hunter22"')[0].endswith(
        '","<passwd redacted>"'
    )


def test_shell_line_redaction_rules():
    assert trace_line("cred buf QUJDREVG", secret=True) == (
        "cred buf <8 chars redacted>",
        "8 base64 characters of a client_key or PSK into the buffer",
    )
    assert trace_line("cred buf QUJDREVG")[0] == "cred buf QUJDREVG"  # a certificate chunk
    assert trace_line("cred buf clear")[0] == "cred buf clear"
    assert trace_output("uart:~$ cred buf QUJDREVG") == "uart:~$ cred buf <8 chars>"


def test_registered_secrets_are_scrubbed_from_any_line():
    out: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            out.append(text)

        def flush(self) -> None:
            pass

    log = TraceLog(lambda: 0.0, Sink())  # type: ignore[arg-type]
    log.secret(b"\x01\x02\x03\x04\x05", "s3cret-pass")
    log.line("rx", "echo: s3cret-pass and 0102030405 and 0102030405".upper())
    log.line("rx", "echo: s3cret-pass")
    text = "".join(out)
    assert "s3cret" not in text and "0102030405" not in text
    assert "<11 chars redacted>" in text and "<10 chars redacted>" in text
