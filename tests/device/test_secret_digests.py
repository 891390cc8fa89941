"""No output shows the SHA-256 of a secret slot (client_key, key_password, psk): an unsalted
digest of a short password or PSK is cracked offline with a wordlist. JSON, tables and the
native --trace show a secret slot's digest only as a comparison with what the host holds."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
PASSWORD = b"test-only-password"
PSK = bytes(range(32))


@pytest.fixture
def written(cli, tmp_path: Path) -> tuple[str, dict, str]:
    """A simulated device holding a root, a cert, an encrypted key, its password and a PSK:
    (port, `device write --json` document, its --trace)."""
    port = f"sim://native?flash={tmp_path / 'dev.flash'}"
    result = cli(
        [
            "device", "write", "--port", port, "--dialect", "native", "--tag", 42,
            "--root-ca", FIXTURES / "root-ca.pem",
            "--client-cert", FIXTURES / "device.pem",
            "--client-key", FIXTURES / "device-encrypted.key",
            "--key-password-env", "KEY_PW",
            "--psk-hex-env", "PSK_HEX", "--psk-identity", "dev-0001",
            "--encoding", "keep", "--json", "--trace",
        ],
        env={"KEY_PW": PASSWORD.decode(), "PSK_HEX": PSK.hex()},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    return port, doc, result.output


def _digests(data: bytes) -> list[str]:
    d = hashlib.sha256(data).hexdigest()
    return [d, d.upper()]


def _dumped_hex(trace: str) -> str:
    """The hex-dump bytes of every traced frame, run together (a digest may span rows)."""
    rows = re.findall(r"^\s+[0-9a-f]{4}  ((?:[0-9a-f*]{2} ?)+)", trace, re.MULTILINE)
    return "".join(r.replace(" ", "") for r in rows)


def _leaks(text: str, secrets: list[bytes]) -> list[str]:
    haystack = text + _dumped_hex(text)
    return [d for s in secrets for d in _digests(s) if d in haystack]


def _secrets() -> list[bytes]:
    return [PASSWORD, PSK, (FIXTURES / "device-encrypted.key").read_bytes()]


def test_write_json_and_trace_show_no_secret_digest(written) -> None:
    _port, doc, output = written
    by_slot = {s["slot"]: s for s in doc["slots"]}
    assert set(by_slot) >= {"root_ca", "client_key", "key_password", "psk"}
    for name in ("client_key", "key_password", "psk"):
        assert by_slot[name]["sha256"] is None and by_slot[name]["matches_host"] is True
    root = (FIXTURES / "root-ca.pem").read_bytes()
    assert by_slot["root_ca"]["sha256"] == hashlib.sha256(root).hexdigest()
    assert _leaks(output, _secrets()) == []


def test_list_json_table_and_trace_show_no_secret_digest(cli, written) -> None:
    port, _doc, _ = written
    listed = cli(["device", "list", "--port", port, "--json", "--trace"])
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.stdout.strip().splitlines()[-1])
    secret = [s for s in doc["slots"] if s["slot"] in ("client_key", "key_password", "psk")]
    assert len(secret) == 3
    assert all(s["sha256"] is None and s["matches_host"] is None for s in secret)
    # The control: the trace does dump the LIST reply, public digests included.
    root_digest = hashlib.sha256((FIXTURES / "root-ca.pem").read_bytes()).hexdigest()
    assert "LIST_PAGE" in listed.output and root_digest in _dumped_hex(listed.output)
    assert "<secret: not shown>" in listed.output and "** ** **" in listed.output
    table = cli(["device", "list", "--port", port, "--no-read"])
    assert table.exit_code == 0 and "(secret)" in table.stdout
    assert _leaks(listed.output + table.output, _secrets()) == []


def test_a_secret_digest_is_shown_as_a_comparison_only() -> None:
    from provision.bundle.model import SlotType
    from provision.device import SlotInfo
    from provision.slot_view import digest_cell, slot_view

    psk = SlotInfo(7, SlotType.PSK, 32, hashlib.sha256(PSK).digest())
    same, other = slot_view(psk, held=hashlib.sha256(PSK).digest()), slot_view(psk, held=b"x")
    assert (same["matches_host"], other["matches_host"]) == (True, False)
    assert (digest_cell(same), digest_cell(other)) == ("(secret) matches", "(secret) DIFFERS")
    assert slot_view(psk) == {"sec_tag": 7, "slot": "psk", "size": 32, "sha256": None,
                              "matches_host": None}  # fmt: skip


@pytest.mark.parametrize("dialect", ["at-cmng", "zephyr-shell"])
def test_text_dialect_traces_show_no_psk_digest(cli, tmp_path: Path, dialect: str) -> None:
    """The modem's `%CMNG:` and the shell's `cred list` lines carry a digest per slot."""
    port = f"sim://{dialect}?flash={tmp_path / 'dev.flash'}"
    common = ["--port", port, "--dialect", dialect, "--trace", "--json"]
    wrote = cli(
        ["device", "write", *common, "--tag", 42, "--root-ca", FIXTURES / "root-ca.pem",
         "--psk-hex-env", "PSK_HEX", "--psk-identity", "dev-0001"],
        env={"PSK_HEX": PSK.hex()},
    )  # fmt: skip
    listed = cli(["device", "list", *common])
    assert wrote.exit_code == 0 and listed.exit_code == 0, wrote.output + listed.output
    output = wrote.output + listed.output
    assert "<secret digest not shown>" in output  # the list lines were traced
    # Stored as raw bytes (Zephyr) or as hex text (nRF91); digests in hex or base64.
    forms = [PSK, PSK.hex().encode(), PSK.hex().upper().encode()]
    digests = [hashlib.sha256(f).digest() for f in forms]
    shown = [d.hex() for d in digests] + [d.hex().upper() for d in digests]
    shown += [base64.b64encode(d).decode() for d in digests]
    assert [d for d in shown if d in output] == []


def test_native_trace_shows_no_digest_over_the_set(written) -> None:
    """BEGIN's bundle digest (BEGIN_LEAN's first 4 bytes of it: `device write` opens
    pipelined, so a lean transfer) and COMMITTED's set digest cover the PSK and password
    too: with the other slots public they are as good as the secrets' own digests."""
    _port, _doc, output = written
    lines = output.splitlines()
    for name, size in (("BEGIN_LEAN", 4), ("COMMITTED", 32)):
        at = next(i for i, line in enumerate(lines) if f" {name} {{" in line)
        assert "<covers the set's secrets: not shown>" in lines[at]
        assert re.search(r"[0-9a-f]{8}", lines[at].split("{", 1)[1]) is None
        rows = []
        for line in lines[at + 1 :]:
            if not line.startswith(" " * 13):
                break
            rows.append(line)
        assert _dumped_hex("\n".join(rows)).count("**") == size  # the digest's bytes
