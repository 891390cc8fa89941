"""One table of simulated-device options, read alike from sim:// URLs and `provision sim`:
what a kind declares is settable from both, anything else is refused with one line (exit 3)."""

from __future__ import annotations

import json

import pytest

from provision.errors import InputError
from provision.sim.serve import RUNNER_OPTIONS, build_runner, kind_options, open_sim_transport

KINDS = ("native", "at-cmng", "zephyr-shell", "at-shell")


@pytest.mark.parametrize("kind", KINDS)
def test_a_misspelt_option_is_refused_for_every_kind(kind):
    with pytest.raises(InputError, match=f"unknown {kind} sim option 'flsh'"):
        open_sim_transport(f"sim://{kind}?flsh=/tmp/x.flash")


@pytest.mark.parametrize("kind", KINDS)
def test_a_negative_baud_is_refused_for_every_kind(kind):
    with pytest.raises(InputError, match="baud='-1'"):
        build_runner(kind, {"baud": "-1"})


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("at-cmng", {"uuid": "not-a-uuid"}, "not a UUID"),
        ("at-cmng", {"imei": "123"}, "15 digits"),
        ("at-cmng", {"crlf_invalid": "maybe"}, "not a valid bool"),
        ("zephyr-shell", {"cred_buf_size": "-5"}, "not a valid int"),
        ("at-shell", {"unescape_lf": "2"}, "not a valid bool"),
        ("native", {"tls": "yes please"}, "not 0 or 1"),
    ],
)
def test_a_malformed_value_is_refused(kind, options, message):
    with pytest.raises(InputError, match=message):
        build_runner(kind, options)


def test_a_garbage_signer_is_refused(tmp_path):
    signer = tmp_path / "signer.pem"
    signer.write_text("-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InputError, match=r"signer\.pem"):
        build_runner("native", {"signer": str(signer)})


def test_url_and_cli_options_reach_the_device():
    runner = build_runner(
        "at-shell",
        {"cmd_buff_size": "4096", "cred_buf_size": "2048", "unescape_lf": "1",
         "crlf_invalid": "1", "uuid": "50363154-3931-44f0-8022-121b6401627d"},
    )  # fmt: skip
    shell = runner.device
    assert (shell.options.cmd_buff_size, shell.options.cred_buf_size) == (4096, 2048)
    assert shell.options.unescape_lf and shell.modem.options.crlf_invalid
    assert shell.modem.options.uuid == "50363154-3931-44f0-8022-121b6401627d"
    modem = build_runner("at-cmng", {"cmd_buff_size": "512"}).device
    modem.execute("AT+CMEE=1")
    assert modem.receive_data(b"AT+CGMI" + b" " * 600 + b"\r\n") == b""  # dropped, no reply


@pytest.mark.parametrize(
    "args",
    [
        ["--dialect", "native", "--opt", "flsh=/tmp/x"],
        ["--baud", "-1"],
        ["--dialect", "at-cmng", "-o", "crlf_invalid=perhaps"],
        ["--dialect", "zephyr-shell", "-o", "nonsense"],
        ["--dialect", "at-shell", "-o", "bogus=1"],
    ],
)
def test_provision_sim_refuses_bad_options_with_one_line_and_exit_3(cli, args):
    result = cli(["sim", "--pty", *args])
    assert result.exit_code == 3, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_provision_sim_refuses_a_garbage_signer(cli, tmp_path):
    signer = tmp_path / "junk.pem"
    signer.write_bytes(b"junk")
    result = cli(["sim", "--pty", "--signer", signer])
    assert result.exit_code == 3 and "junk.pem" in result.output


@pytest.mark.parametrize("kind", KINDS)
def test_list_options_prints_the_table_the_urls_accept(cli, kind):
    result = cli(["sim", "--dialect", kind, "--list-options", "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.output)["options"]
    assert set(table) == set(RUNNER_OPTIONS) | set(kind_options(kind))
    for name in kind_options(kind):
        # Every listed name passes the URL check (a value may still be refused).
        try:
            build_runner(kind, {name: "1"})
        except InputError as err:
            assert "unknown" not in err.message
