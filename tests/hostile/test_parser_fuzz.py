"""Every parser of untrusted input, fuzzed: bundles, link frames, AT and shell reply lines,
station configs, registry rows, PEM/DER certificates, keys, CSRs and public keys.

The contract (h11's): any input either parses or raises the parser's one documented error (a
ProvisionError with a message) — never anything else, never a hang. The default test run
tries PROVISION_FUZZ_EXAMPLES inputs per parser (bounded, a few seconds); `make fuzz-py`
sets it high for a long run.
"""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.errors import ProvisionError

EXAMPLES = int(os.environ.get("PROVISION_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 150,  # the bounded run is reproducible
)


def refuses_cleanly(fn, *args):  # type: ignore[no-untyped-def]
    """Call a parser: its result, or None if it refused with a one-line ProvisionError."""
    try:
        return fn(*args)
    except ProvisionError as err:
        assert err.message and "\n" not in err.message.strip(), err.message
        return None


def mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """A valid input with bytes flipped, cut, repeated or spliced: the inputs a parser
    meets on a noisy line or in a damaged file (random bytes alone rarely get past a magic)."""

    def mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
        buf = bytearray(data)
        for kind, where, value in ops:
            if not buf:
                break
            i = where % len(buf)
            if kind == 0:
                buf[i] ^= 1 << (value % 8)
            elif kind == 1:
                del buf[i : i + 1 + value % 16]
            elif kind == 2:
                buf[i:i] = bytes([value % 256]) * (1 + value % 8)
            else:
                buf = buf[:i]
        return bytes(buf)

    ops = st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6
    )
    return st.one_of(st.builds(mutate, st.just(seed), ops), st.binary(max_size=512))


# --- bundles ------------------------------------------------------------------------------


def _bundle() -> bytes:
    from provision.bundle import format as fmt

    creds = fmt.CredentialSet.of(
        [
            fmt.Slot(42, fmt.SlotType.ROOT_CA, fmt.Encoding.PEM, b"-----BEGIN X-----\n"),
            fmt.Slot(7, fmt.SlotType.PSK, fmt.Encoding.RAW, bytes(range(16))),
            fmt.Slot(7, fmt.SlotType.PSK_IDENTITY, fmt.Encoding.RAW, b"dev-1"),
        ],
        device_id="dev-1",
    )
    return fmt.encode(creds)


@FUZZ
@given(data=mutations(_bundle()))
def test_bundle_decode_parses_or_refuses(data: bytes) -> None:
    from provision.bundle import format as fmt

    decoded = refuses_cleanly(fmt.decode, data)
    if decoded is not None:
        # What parsed rebuilds to the same bytes: no two readings of one file.
        assert fmt.encode(decoded.credentials, decoded.signature) == data


# --- link frames --------------------------------------------------------------------------


def _frames() -> bytes:
    """Every message of the golden frame vectors (tests/vectors/frames.jsonl), framed."""
    import json
    from pathlib import Path

    vectors = Path(__file__).resolve().parents[1] / "vectors" / "frames.jsonl"
    return b"".join(bytes.fromhex(json.loads(line)["hex"]) for line in vectors.open())


def _bodies() -> list[bytes]:
    from provision.link import framing
    from provision.link import messages as m

    decoder = framing.FrameDecoder(m.HEADER_SIZE + m.MAX_PAYLOAD)
    return [b for b in decoder.feed(_frames()) if isinstance(b, bytes)]


@FUZZ
@given(data=mutations(_frames()), cuts=st.lists(st.integers(0, 4096), max_size=6))
def test_host_link_takes_any_bytes_in_any_pieces(data: bytes, cuts: list[int]) -> None:
    from provision.link import messages as m
    from provision.link.host import HostLink

    link = HostLink()
    points = sorted({c % (len(data) + 1) for c in cuts})
    last = 0
    for p in [*points, len(data)]:
        for frame in link.receive_data(data[last:p]):
            assert isinstance(frame, m.Frame)
        last = p
    assert link.no_answer_hint()


@FUZZ
@given(body=st.sampled_from(_bodies()).flatmap(mutations))
def test_message_decode_parses_or_refuses(body: bytes) -> None:
    from provision.link import messages as m

    refuses_cleanly(m.decode, body)


# --- AT and shell reply lines -------------------------------------------------------------

REPLY_TEXT = st.text(
    alphabet=st.sampled_from([*string.printable, "é", "\x00", "\xff"]), max_size=120
)
REPLY_LINE = st.one_of(
    REPLY_TEXT,
    st.builds(lambda a, b: f"%CMNG: {a}{b}", REPLY_TEXT, REPLY_TEXT),
    st.builds(lambda a: f'%KEYGEN: "{a}"', REPLY_TEXT),
    st.builds(lambda a: f"+CFUN: {a}", REPLY_TEXT),
    st.builds(lambda a, b: f"{a} {b} credentials found", st.integers(-1, 9), REPLY_TEXT),
    st.builds(lambda a: f"{a}|client_cert|QUJD|3", st.integers(0, 99)),
)


@FUZZ
@given(line=REPLY_LINE, lines=st.lists(REPLY_LINE, max_size=6))
def test_at_cmng_reply_parsers_parse_or_refuse(line: str, lines: list[str]) -> None:
    from provision.dialects import at_cmng

    for parse in (at_cmng.parse_list_line, at_cmng.parse_read, at_cmng.parse_keygen):
        refuses_cleanly(parse, line)
    refuses_cleanly(at_cmng.parse_cfun, line)
    refuses_cleanly(at_cmng.parse_imei, tuple(lines))


@FUZZ
@given(lines=st.lists(REPLY_LINE, max_size=8), sent=st.binary(max_size=40))
def test_shell_reply_parsers_parse_or_refuse(lines: list[str], sent: bytes) -> None:
    from provision.dialects import at_shell, zephyr_shell

    refuses_cleanly(zephyr_shell.parse_list, lines)
    refuses_cleanly(zephyr_shell.parse_get, lines)
    assert len(zephyr_shell.device_message(lines)) <= 200
    refuses_cleanly(at_shell.parse_answer, lines, b"AT%CMNG=1\r\n", "%CMNG")
    assert isinstance(at_shell.strip_echo(lines, sent), list)


# --- station configs ----------------------------------------------------------------------

TOML_SCALAR = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=20),
)
TOML_VALUE = st.recursive(
    TOML_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
STATION_KEYS = st.sampled_from(
    ["station", "registry", "operator", "dialect", "ports", "baud", "flow", "profile",
     "sec_tags", "device_timeout", "retries", "poll_interval", "proof", "ca", "x"]
)  # fmt: skip


@FUZZ
@given(doc=st.dictionaries(STATION_KEYS, TOML_VALUE, max_size=8), ca=TOML_VALUE)
def test_station_config_parses_or_refuses(tmp_path_factory, doc, ca) -> None:
    from provision.line.config import config_from_dict

    doc = {**doc, "ca": ca if doc.get("ca") is None else doc["ca"]}
    base = tmp_path_factory.getbasetemp()
    refuses_cleanly(config_from_dict, doc, base, "station.toml")


@FUZZ
@given(text=mutations(b'station = "s"\n[ca]\ncert = "c"\nkey = "k"\n[[sec_tags]]\nsec_tag = 1\n'))
def test_station_file_text_parses_or_refuses(tmp_path_factory, text: bytes) -> None:
    from provision.line.config import load_config

    path = tmp_path_factory.mktemp("st") / "station.toml"
    path.write_bytes(text)
    refuses_cleanly(load_config, path)


# --- registry rows ------------------------------------------------------------------------


@FUZZ
@given(
    device_id=st.text(max_size=30),
    station=st.text(max_size=30),
    sec_tags=st.one_of(st.none(), st.text(max_size=20)),
    proof=st.one_of(st.none(), st.text(max_size=40)),
)
def test_registry_rows_read_back_or_refuse(tmp_path_factory, device_id, station, sec_tags, proof):
    """A row as anyone with the file may have written it: reading it back (show, verify,
    export) gives a record or a RegistryError, never a crash."""
    import shutil
    import sqlite3

    from provision.registry import open_registry

    template = tmp_path_factory.getbasetemp() / "fuzz-registry-template.sqlite"
    if not template.exists():
        open_registry(str(template)).close()
        conn = sqlite3.connect(template)
        conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to copy
        conn.close()
    path = tmp_path_factory.mktemp("reg") / "reg.sqlite"
    shutil.copy(template, path)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO records (seq, device_id, result, station, operator, started_at, "
        "finished_at, sec_tags, prev_hash, row_hash, proof) VALUES "
        "(1, ?, 'ok', ?, 'op', 't', 't', ?, 'p', 'h', ?)",
        (device_id, station, sec_tags or "", proof),
    )
    conn.commit()
    conn.close()
    with open_registry(str(path), read_only=True) as reg:
        refuses_cleanly(reg.history, device_id)
        report = refuses_cleanly(reg.verify)
        assert report is None or not report.ok  # a forged row never verifies
        refuses_cleanly(lambda: list(reg.iter_provisioned()))


# --- PEM/DER inputs -----------------------------------------------------------------------


def _pki_inputs() -> dict[str, bytes]:
    from pathlib import Path

    fixtures = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
    return {p.name: p.read_bytes() for p in sorted(fixtures.iterdir())}


PKI = _pki_inputs()


@FUZZ
@given(
    data=st.sampled_from(sorted(PKI)).flatmap(lambda name: mutations(PKI[name])),
    password=st.one_of(st.none(), st.binary(max_size=20)),
)
def test_pem_der_loaders_parse_or_refuse(data: bytes, password: bytes | None) -> None:
    from provision.pki.certs import load_certificates
    from provision.pki.csr import load_csr
    from provision.pki.keys import load_private_key
    from provision.pki.signing import load_public_key

    refuses_cleanly(load_certificates, data, "input")
    refuses_cleanly(load_private_key, data, password, "input")
    refuses_cleanly(load_csr, data, "input")
    refuses_cleanly(load_public_key, data, "input")


@pytest.mark.fuzz
def test_fuzz_marker_runs_the_long_profile() -> None:
    # `make fuzz-py` selects this module with PROVISION_FUZZ_EXAMPLES raised; under the
    # marker alone the bound must already be above the default run's.
    if os.environ.get("PROVISION_FUZZ_EXAMPLES") is None:
        pytest.skip("long run: make fuzz-py (PROVISION_FUZZ_EXAMPLES)")
    assert EXAMPLES > 150
