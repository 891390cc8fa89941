"""Recorded exchanges (tests/vectors/transcripts) checked against both sides: the driver
must send exactly the recorded bytes and reach the recorded results when the device answers
as recorded; the simulator must answer each recorded line exactly as recorded."""

from __future__ import annotations

import os

import pytest
from transcript_ops import DIR, ScriptedTransport, load, make_device, make_session, record, run_ops

SPECS = [
    (
        "at-cmng-write-offline",
        "at-cmng",
        {"cfun": 1},
        [["info"], ["write", "device"], ["list"], ["read", 42, "root_ca"], ["delete", 42]],
        "driver vs simulator; syntax and replies per Nordic %CMNG/+CFUN/+CGSN reference",
    ),
    (
        "at-cmng-psk-and-password",
        "at-cmng",
        {"check_key_password": False},  # the transcript's encrypted key is synthetic
        [["write", "psk"], ["write", "encrypted"], ["list"]],
        "driver vs simulator; PSK as hex, passwd as 5th %CMNG parameter",
    ),
    (
        "at-cmng-errors",
        "at-cmng",
        {"write_overwrites": False},
        [
            ["read", 5, "root_ca"],
            ["delete", 5, "client_cert"],
            ["write", "device"],
            ["write", "device"],
        ],
        "driver vs simulator; 513 not found; 519 exists (write_overwrites=0): delete, write",
    ),
    (
        "zephyr-write-list-get",
        "zephyr-shell",
        {},
        [
            ["info"],
            ["write", "device"],
            ["list"],
            ["read", 42, "client_cert"],
            ["write", "psk"],
            ["delete", 42],
        ],
        "driver vs simulator; messages per Zephyr tls_credentials_shell.c",
    ),
    (
        "zephyr-errors",
        "zephyr-shell",
        {"vt100": False, "max_credentials": 2},
        [["read", 9, "root_ca"], ["delete", 9, "root_ca"], ["write", "device"]],
        "driver vs simulator; 'There is no TLS credential', add failing with -ENOMEM",
    ),
    (
        "at-shell-write-list-read",
        "at-shell",
        {"cmd_buff_size": 4096, "modem_cfun": 1, "modem_check_key_password": False},
        [
            ["info"],
            ["write", "device"],
            ["list"],
            ["read", 42, "root_ca"],
            ["read", 5, "root_ca"],
            ["write", "encrypted"],
            ["delete", 42],
        ],
        "driver vs simulator; `at '...'` lines per NCS lib/at_shell/at_shell.c and Zephyr "
        "shell_utils.c make_argv (\\x0a inside single quotes), echo wrapped at 80 columns",
    ),
    (
        "at-shell-buffer-too-small",
        "at-shell",
        {"vt100": False, "modem_check_key_password": False},
        [["write", "device"], ["write", "psk"], ["list"]],
        "driver vs simulator; CONFIG_SHELL_CMD_BUFF_SIZE 256 (Zephyr default): the padded "
        "check line is cut (usage text), the set is refused before any write; a PSK fits",
    ),
]

NAMES = [s[0] for s in SPECS]

if os.environ.get("PROVISION_RECORD_TRANSCRIPTS") == "1":
    for spec in SPECS:
        record(*spec)


@pytest.mark.parametrize("name", NAMES)
def test_driver_replays_transcript(name):
    header, boot, exchanges = load(DIR / f"{name}.jsonl")
    transport = ScriptedTransport(boot, exchanges)
    session = make_session(header["dialect"], transport)
    results = run_ops(session, header["ops"])
    assert results == header["results"]
    assert transport.position == len(exchanges), "driver stopped before the recorded end"


@pytest.mark.parametrize("name", [*NAMES, "at-cmng-reference", "zephyr-reference"])
def test_simulator_answers_as_recorded(name):
    header, boot, exchanges = load(DIR / f"{name}.jsonl")
    device = make_device(header["dialect"], header["sim"])
    assert device.boot() == boot
    for i, (sent, reply) in enumerate(exchanges):
        assert device.receive_data(sent) == reply, f"exchange {i}: {sent[:50]!r}"


def test_transcripts_cover_both_dialects():
    dialects = {load(p)[0]["dialect"] for p in DIR.glob("*.jsonl")}
    assert dialects == {"at-cmng", "zephyr-shell", "at-shell"}
