"""Habits from esptool, nrfcredstore and step hold for every command: -h, -V, -q, `-` as
stdin/stdout, one `--out/-o`, PROVISION_* variables and provision.toml for device commands,
`--port auto`, `--before/--after` resets, and a JSON error object under --json."""

from __future__ import annotations

import json

import pytest

from provision.cli.conventions import pick_port
from provision.errors import InputError
from provision.transport.reset import AFTER, BEFORE, apply


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    # The developer's own ~/.config/provision/provision.toml must not steer the tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PROVISION_CONFIG", raising=False)
    for var in ("PROVISION_PORT", "PROVISION_BAUD", "PROVISION_DIALECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def test_short_help_and_version(cli):
    for args in (["-h"], ["device", "-h"], ["device", "write", "-h"], ["pki", "init-ca", "-h"]):
        r = cli(args)
        assert r.exit_code == 0 and "Usage:" in r.stdout, args
    r = cli(["-V"])
    assert r.exit_code == 0 and r.stdout.startswith("provision ")


def test_completion_is_offered(cli):
    assert "--install-completion" in cli(["--help"]).stdout


def test_one_output_option_name_with_old_names_hidden_but_accepted(cli, tmp_path):
    shown = cli(["pki", "init-ca", "--help"], env={"COLUMNS": "200"}).stdout
    assert "-o, --out" in shown and "--out-dir" not in shown
    assert cli(["pki", "init-ca", "--no-password", "-o", "a", "--cn", "A"]).exit_code == 0
    assert cli(["pki", "init-ca", "--no-password", "--out-dir", "b", "--cn", "B"]).exit_code == 0
    assert (tmp_path / "a" / "ca.crt").exists() and (tmp_path / "b" / "ca.crt").exists()
    unpack = cli(["bundle", "unpack", "--help"], env={"COLUMNS": "200"}).stdout
    assert "-o, --out" in unpack and "--dir" not in unpack


def test_quiet_prints_no_report(cli, tmp_path):
    r = cli(["-q", "pki", "init-ca", "--no-password", "-o", "ca", "--cn", "Q"])
    assert r.exit_code == 0 and r.stdout == "" and (tmp_path / "ca" / "ca.key").exists()


def test_dash_is_stdout_for_the_one_output_and_stdin_for_the_one_input(cli, tmp_path):
    assert cli(["pki", "init-ca", "--no-password", "-o", "ca", "--cn", "S"]).exit_code == 0
    pack = cli(["bundle", "pack", "--tag", "1", "--root-ca", "ca/ca.crt", "-o", "-"])
    assert pack.exit_code == 0, pack.output
    assert not (tmp_path / "-").exists()
    data = pack.stdout_bytes
    (tmp_path / "ref.prvb").write_bytes(data)
    ref = cli(["bundle", "inspect", "ref.prvb", "--json"])
    piped = cli(["bundle", "inspect", "-", "--json"], input=data)  # type: ignore[arg-type]
    assert piped.exit_code == 0
    assert json.loads(piped.stdout)["digest"] == json.loads(ref.stdout)["digest"]


def test_device_commands_take_port_and_dialect_from_the_environment(cli):
    r = cli(
        ["device", "info", "--json"],
        env={"PROVISION_PORT": "sim://at-cmng", "PROVISION_DIALECT": "at-cmng"},
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["dialect"] == "at-cmng"


def test_config_file_precedence_flag_env_cwd_user(cli, tmp_path):
    user = tmp_path / "xdg" / "provision"
    user.mkdir(parents=True)
    (user / "provision.toml").write_text('[device]\nport = "sim://zephyr-shell"\n')

    def dialect(*args: str, env: dict[str, str] | None = None) -> str:
        r = cli(["device", "info", "--json", *args], env=env)
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["dialect"]

    assert dialect() == "zephyr-shell"  # user file
    (tmp_path / "provision.toml").write_text('[device.info]\nport = "sim://at-cmng"\n')
    assert dialect() == "at-cmng"  # working directory over user file
    assert dialect(env={"PROVISION_PORT": "sim://native"}) == "native"  # env over files
    assert dialect("--port", "sim://at-shell", env={"PROVISION_PORT": "sim://native"}) == (
        "at-shell"
    )  # flag over env


def test_config_file_with_an_unknown_option_is_a_one_line_input_error(cli, tmp_path):
    (tmp_path / "provision.toml").write_text('[device]\nprot = "sim://native"\n')
    r = cli(["device", "info", "--port", "sim://native"])
    assert r.exit_code == 3
    assert "provision.toml: [device] no device command has --prot" in r.output


def test_json_failure_is_an_object_on_stdout_and_a_line_on_stderr(cli):
    r = cli(["check", "--root", "missing.pem", "--json"])
    assert r.exit_code == 3
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["error"]["exit_code"] == 3
    assert "missing.pem" in doc["error"]["message"]
    assert "error: missing.pem" in r.stderr


def test_port_auto_takes_the_one_usb_port_or_asks():
    usb = {"port": "/dev/ttyACM0", "description": "nRF9151", "hwid": "USB VID:PID=1915:910a"}
    other = {"port": "/dev/ttyS0", "description": "n/a", "hwid": "n/a"}
    assert pick_port([other, usb], interactive=False) == "/dev/ttyACM0"
    with pytest.raises(InputError, match="no serial port"):
        pick_port([], interactive=False)
    two = [usb, {**usb, "port": "/dev/ttyACM1"}]
    with pytest.raises(InputError, match=r"2 serial ports .*ttyACM0, /dev/ttyACM1"):
        pick_port(two, interactive=False)


class Lines:
    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []
        self._dtr = self._rts = False

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = value
        self.log.append(("dtr", value))

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = value
        self.log.append(("rts", value))


def test_hard_reset_pulses_rts_like_esptool():
    lines = Lines()
    apply(lines, AFTER["hard-reset"], sleep=lambda s: lines.log.append(("wait", s)))
    steps = [step for step in lines.log if step[0] != "dtr"]  # DTR re-writes: Windows drivers
    assert steps == [("rts", True), ("wait", 0.1), ("rts", False)]
    assert lines.rts is False


def test_default_reset_ends_with_both_lines_released():
    lines = Lines()
    apply(lines, BEFORE["default-reset"], sleep=lambda s: None)
    assert (lines.dtr, lines.rts) == (False, False)
    assert BEFORE["no-reset"] == ()


def test_unknown_reset_name_is_a_bad_command_line(cli):
    r = cli(["device", "info", "--port", "sim://native", "--before", "sideways"])
    assert r.exit_code == 2 and "sideways" in r.output
