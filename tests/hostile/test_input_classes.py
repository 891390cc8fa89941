"""The other classes of hostile input, each fixed in one place: data printed as markup,
read-only commands that created state, station configs of the wrong types, operating-system
errors, shared and mistaken ports, and a link that carries bytes but no frames."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import termios
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hostile_checks import assert_clean_failure
from hostile_tree import commands

from provision.errors import ExitCode, InputError
from provision.registry import Entry, Result, open_registry

# --- 1. data is never markup ------------------------------------------------------------

MARKUP = "[/red]:x:\x07"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _registry_with(path: Path, device_id: str, station: str) -> None:
    with open_registry(str(path)) as reg:
        claim = reg.claim(device_id, station)
        reg.record(
            Entry(
                device_id, Result.FAILED, station, "op[/]", _now(), _now(), error_code="link[/red]"
            ),
            claim=claim,
        )


def test_registry_values_are_printed_literally(run, tmp_path) -> None:
    # `[/red]` in a device id or station made rich raise MarkupError (exit 70).
    reg = tmp_path.parent / f"{tmp_path.name}-markup.sqlite"
    _registry_with(reg, "dev-[/red]", MARKUP)
    with open_registry(str(reg)) as r:
        r.claim("dev-[b]", "st[/i]")  # in flight: verify lists it
    result = run("registry", "show", "dev-[/red]", "-r", reg)
    assert result.exit_code == 0, result.output
    shown = "".join(result.stdout.split())  # a table folds long cells over several lines
    # (folded at 80 columns, a long cell's tail may sit beside the next column's text)
    assert "devicedev-[/red]" in shown and "[/red]:x:" in shown
    assert "link[/red]" in shown and "op[/]" in shown
    assert "\x07" not in result.stdout
    result = run("registry", "verify", "-r", reg)
    assert result.exit_code == 0, result.output
    assert "in flight: dev-[b] at station st[/i]" in result.stderr


def test_console_and_table_cannot_be_given_markup() -> None:
    from rich.console import Console

    from provision.cli.common import PlainConsole, table

    rows = table("a", "b", title="[red]t")
    rows.add_row("[/red]", "x\x07")
    console = PlainConsole(record=True, width=100, force_terminal=False)
    console.print(rows)
    console.print("[bold]line[/bold] :smile:", markup=True)
    shown = console.export_text()
    assert "[red]t" in shown and "[/red]" in shown and "x\\x07" in shown
    assert "[bold]line[/bold] :smile:" in shown
    assert isinstance(console, Console)


# --- 5. read-only commands never create or migrate --------------------------------------

READ_ONLY = [c for c in commands() if c.path[0] == "registry"]


@pytest.mark.parametrize("cmd", READ_ONLY, ids=[c.id for c in READ_ONLY])
@pytest.mark.parametrize("kind", ["empty", "junk", "missing", "directory", "fifo"])
def test_read_only_registry_command_refuses_a_non_registry(run, tmp_path, cmd, kind) -> None:
    where = tmp_path.parent / f"{tmp_path.name}-ro"
    where.mkdir()
    target = where / "reg.sqlite"
    if kind == "empty":
        target.write_bytes(b"")
    elif kind == "junk":
        target.write_bytes(b"SQLite format 2\x00" + bytes(range(256)) * 8)
    elif kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    before = sorted((p.name, p.lstat().st_size) for p in where.iterdir())
    args = [*cmd.path, *(["dev-1"] if cmd.param("device_id") else []), "-r", target]
    assert_clean_failure(run(*args), None, ExitCode.REGISTRY, "reg.sqlite")
    # A 0-byte file stays 0 bytes (it was turned into an empty registry: "chain intact").
    assert sorted((p.name, p.lstat().st_size) for p in where.iterdir()) == before


def test_read_only_open_of_an_old_schema_does_not_migrate(tmp_path) -> None:
    import sqlite3

    from provision.errors import RegistryError

    path = tmp_path / "reg.sqlite"
    open_registry(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET schema_version = 1")
    conn.commit()
    conn.close()
    with pytest.raises(RegistryError, match="schema version 1"):
        open_registry(str(path), read_only=True)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT schema_version FROM meta").fetchone() == (1,)
    conn.close()


# --- 3. station configs of the wrong types ----------------------------------------------

BAD_STATION = [
    ('sec_tags = [{sec_tag = "abc", client = true}]', "sec_tags[0].sec_tag", "an integer"),
    ("sec_tags = [{sec_tag = 1, client = true, roots = 5}]", "sec_tags[0].roots", "string"),
    ("sec_tags = [1, 2]", "sec_tags[0]", "a table"),
    ('profile = "x"', "profile", "a table"),
    ("ports = 5", "ports", "a string or an array"),
    ('baud = "fast"', "baud", "an integer"),
    ("retries = 1.5", "retries", "an integer"),
    ("device_timeout = true", "device_timeout", "a number"),
    ("sec_tags = [{sec_tag = 1, client = 1}]", "sec_tags[0].client", "true or false"),
    ("[profile]\ndays = 7.5", "profile.days", "an integer"),
    ("[profile]\ncolour = 1", "profile.colour", "unknown setting"),
]


@pytest.mark.parametrize(("body", "field", "expected"), BAD_STATION)
def test_station_config_of_wrong_type_names_file_field_and_expectation(
    run, tmp_path, body, field, expected
) -> None:
    where = tmp_path.parent / f"{tmp_path.name}-st"
    where.mkdir()
    config = where / "station.toml"
    ca = '[ca]\ncert = "ca.crt"\nkey = "ca.key"\n'
    # A table goes after the top-level keys, as TOML requires.
    top, tables = ("", body) if body.startswith("[") else (body, "")
    config.write_text(f'station = "st"\n{top}\n{ca}{tables}\n')
    line = assert_clean_failure(run("line", "run", config), None, ExitCode.INPUT)
    assert f"{config}: {field}: " in line and expected in line, line
    assert sorted(p.name for p in where.iterdir()) == ["station.toml"]


def test_ca_that_is_not_a_table_is_named(run, tmp_path) -> None:
    config = tmp_path.parent / f"{tmp_path.name}-ca.toml"
    config.write_text('station = "st"\nca = "cert key"\n')
    line = assert_clean_failure(run("line", "run", config), None, ExitCode.INPUT)
    assert "ca: expected a table" in line


# --- 4. operating-system errors ---------------------------------------------------------


def test_non_utf8_password_file_is_bad_input_everywhere(run, tmp_path) -> None:
    pw = tmp_path.parent / f"{tmp_path.name}.pw"
    pw.write_bytes(b"\xff\xfe secret\n")
    for args in (
        ["pki", "init-ca", "-o", tmp_path.parent / f"{tmp_path.name}-ca", "--encrypt",
         "--password-file", pw],
        ["testserver", "--ca", pw, "--cert", pw, "--key", pw, "--password-file", pw],
    ):  # fmt: skip
        line = assert_clean_failure(run(*args), None, ExitCode.INPUT)
        assert "not UTF-8" in line or "not PEM" in line or "not a" in line, line


def test_os_error_at_the_boundary_is_exit_3_in_one_line() -> None:
    import typer
    from typer.testing import CliRunner

    from provision.cli.main import ProvisionGroup

    app = typer.Typer(cls=ProvisionGroup)

    @app.command()
    def boom() -> None:
        raise PermissionError(13, "Permission denied", "/etc/shadow")

    @app.command()
    def text() -> None:
        b"\xff".decode("utf-8")

    result = CliRunner().invoke(app, ["boom"])
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr == "error: /etc/shadow: Permission denied\n"
    result = CliRunner().invoke(app, ["text"])
    assert result.exit_code == ExitCode.INPUT and result.stderr.count("\n") == 1


def test_error_messages_are_one_line_and_clipped() -> None:
    from provision.errors import clip, one_line

    assert one_line("a\nb\r\nc") == "a b  c"
    long = "/tmp/" + "d" * 5000 + "/name.pem"
    shown = clip(long)
    assert shown.endswith("/name.pem (5014 characters)") and len(shown) < 200
    assert clip("a\x1b[2Jb") == "a\\x1b[2Jb"


# --- 10. shared and mistaken ports ------------------------------------------------------


def test_a_busy_port_is_one_line_not_two_writers(run, tmp_path) -> None:
    from provision.transport.serial import open_serial

    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        first = open_serial(name)
        try:
            with pytest.raises(InputError, match="port busy"):
                open_serial(name)
            line = assert_clean_failure(
                run("device", "info", "--port", name, "--dialect", "native"),
                None,
                ExitCode.INPUT,
            )
            assert "port busy" in line
        finally:
            first.close()
        open_serial(name).close()  # free again once the first user closed it
    finally:
        os.close(master)
        os.close(slave)


def test_a_running_sessions_terminal_is_never_probed(run, tmp_path) -> None:
    """A shell's terminal (a wrong /dev/pts number) is refused before anything is written."""
    master, slave = os.openpty()
    name = os.ttyname(slave)

    def become_session_leader() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        stdin=slave,
        preexec_fn=become_session_leader,
    )
    try:
        os.set_blocking(master, False)
        line = assert_clean_failure(
            run("device", "info", "--port", name, "--dialect", "native"), None, ExitCode.INPUT
        )
        assert "terminal of a running session" in line
        with pytest.raises(BlockingIOError):
            os.read(master, 100)  # not one byte reached the terminal
        from provision.line.config import expand_ports

        with pytest.raises(InputError, match="terminal of a running session"):
            expand_ports((name,))
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)


def test_a_regular_file_is_not_a_port(run, tmp_path) -> None:
    f = tmp_path.parent / f"{tmp_path.name}.port"
    f.write_bytes(b"")
    line = assert_clean_failure(run("device", "info", "--port", f), None, ExitCode.INPUT)
    assert "not a serial port" in line
    assert f.read_bytes() == b""


# --- 11. bytes that do not decode -------------------------------------------------------


def test_noise_without_frames_points_at_the_baud_rate(run) -> None:
    # Every byte garbled on the line (as at a wrong line speed): bytes arrive, no frame does.
    result = run("device", "info", "--port", "sim://native?flip=0.3&seed=1",
                 "--dialect", "native", "--timeout", "0.2", "--retries", "1")  # fmt: skip
    line = assert_clean_failure(result, None, ExitCode.LINK)
    assert "arrived but no frame decoded" in line and "--baud" in line


@pytest.mark.parametrize("dialect", ["zephyr-shell", "at-shell", "auto"])
def test_a_text_device_at_another_line_speed_points_at_the_baud_rate(run, dialect) -> None:
    # The cable carries 9600 baud intact, the device talks at 115200: its banner and echo
    # arrive as bytes with the high bit set and no line ends, which is not silence.
    kind = "zephyr-shell" if dialect == "auto" else dialect
    result = run("device", "info", "--port", f"sim://{kind}?baud=115200&line_max=9600",
                 "--dialect", dialect, "--timeout", "0.3", "--retries", "1")  # fmt: skip
    line = assert_clean_failure(result, None, ExitCode.LINK)
    assert "nothing in them decoded" in line and "--baud" in line


def test_a_silent_text_device_is_not_blamed_on_the_baud_rate(run) -> None:
    # An nRF91 modem without echo says nothing to garbled commands: nothing arrived.
    result = run("device", "info", "--port", "sim://at-cmng?baud=115200&line_max=9600",
                 "--dialect", "at-cmng", "--timeout", "0.3", "--retries", "1")  # fmt: skip
    line = assert_clean_failure(result, None, ExitCode.LINK)
    assert "--baud" not in line.split("(")[0] and "nothing in them decoded" not in line


def test_text_and_native_frames_are_not_line_noise() -> None:
    from provision.dialects.native import NativeSession
    from provision.link import messages as m
    from provision.link.host import HostLink
    from provision.transport.base import NoiseMeter

    class Canned:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, max_bytes: int, timeout: float) -> bytes:
            out, self.data = self.data[:max_bytes], self.data[max_bytes:]
            return out

        def write(self, data: bytes) -> None: ...

        def close(self) -> None: ...

    text = NoiseMeter(Canned(b"\x1b[1;32muart:~$ \x1b[m\r\n*** Booting Zephyr OS ***\r\n"))
    text.read(4096, 0)
    assert text.speed_hint() is None
    garbled = NoiseMeter(Canned(bytes(b ^ 0xA5 for b in b"*** Booting Zephyr OS ***\r\n")))
    garbled.read(4096, 0)
    assert garbled.speed_hint() is not None and "--baud" in garbled.speed_hint()
    link = HostLink()
    frame = link.frame(m.Hello(m.PROTOCOL_VERSION, 512), link.next_seq())
    assert NativeSession.recognises(b"\x13\x37\x00" + frame) and not NativeSession.recognises(
        bytes(b ^ 0xA5 for b in frame)
    )


def test_silence_still_asks_whether_a_device_is_there() -> None:
    from provision.link.host import HostLink

    link = HostLink()
    assert link.no_answer_hint() == "is a device on this port?"
    link.receive_data(b"\x13\x37garbage\x00" * 4)
    assert "--baud" in link.no_answer_hint()


# --- 6. the exit code says which side failed ----------------------------------------------


def test_testserver_with_unusable_own_credentials_is_bad_input_not_a_handshake(run, world) -> None:
    junk = world / "junk.pem"
    if not junk.exists():
        junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    good = {"--ca": world / "root-ca.pem", "--cert": world / "device.pem"}
    for changed, needle in (
        ({"--ca": junk}, "junk.pem"),
        ({"--cert": junk}, "junk.pem"),
        ({"--key": world / "signer.key"}, "does not belong"),
    ):
        options = {**good, "--key": world / "device.key", **changed}
        args = [a for pair in options.items() for a in pair]
        result = run("testserver", *args, "--port", "0", "--once")
        line = assert_clean_failure(result, world, ExitCode.INPUT)
        assert needle in line or "server credentials" in line, line


@pytest.mark.parametrize("option", ["flash", "signer"])
def test_simulator_files_named_in_a_port_url_are_read_by_the_one_reader(run, world, option) -> None:
    from hostile_world import hostile_files

    bad = hostile_files(world.dir / "hostile-url")
    for kind in ("char-device", "fifo", "directory"):
        result = run("device", "list", "--port", f"sim://native?{option}={bad[kind]}")
        assert_clean_failure(result, world, ExitCode.INPUT, bad[kind])


def test_a_line_never_opens_a_fifo_or_device_as_its_registry(run, world) -> None:
    from hostile_world import hostile_files

    bad = hostile_files(world.dir / "hostile-reg")
    for kind in ("char-device", "fifo", "directory"):
        result = run("line", "run", world / "station.toml", "-n", "1", "--registry", bad[kind])
        assert_clean_failure(result, world, ExitCode.REGISTRY, bad[kind])
