"""`provision line run` in a real process, stopped by signals: SIGINT and SIGTERM alike
(first: finish the device in flight; second: roll it back without waiting for the step),
SIGINT ignored at start (a script's `cmd &`) unless Ctrl-C comes from the terminal it runs
in the foreground of. Whatever the signals, the registry chain verifies and no claim is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provision.errors import ExitCode
from provision.line import Line
from provision.line.simulate import PtyJig, start_jigs
from provision.registry import Result, open_registry

EXE = str(Path(sys.executable).with_name("provision"))
CONFIG = """
station = "st-sig"
registry = "reg.sqlite"
dialect = "native"
baud = {baud}
device_timeout = {timeout}
retries = 5
poll_interval = 0.05
[ca]
cert = "ca.crt"
key = "ca.key"
[[sec_tags]]
sec_tag = 42
client = true
"""


@pytest.fixture
def slow_jig() -> Iterator[Callable[[int], PtyJig]]:
    """slow_jig(baud, **sim options) → a pty jig whose devices take bytes at `baud`."""
    made: list[PtyJig] = []

    def make(baud: int, **options: str) -> PtyJig:
        (jig,) = start_jigs(
            1, kind="native", baud=baud, options=options, prefix=f"sig{os.getpid()}-"
        )
        made.append(jig)
        return jig

    yield make
    for jig in made:
        jig.stop.set()


def _config(ca_dir: Path, baud: int, timeout: float = 10.0) -> Path:
    path = ca_dir / "station.toml"
    path.write_text(CONFIG.format(baud=baud, timeout=timeout))
    return path


def _start(config: Path, port: str, *, ignore_sigint: bool = False) -> subprocess.Popen[bytes]:
    def child() -> None:
        # SIG_IGN is what a non-interactive shell gives `cmd &`. Otherwise the default, set
        # explicitly: the test runner itself may have been started with SIGINT ignored (a
        # CI script in the background), and a child inherits that.
        signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.SIG_DFL)

    return subprocess.Popen(
        [EXE, "line", "run", str(config), "-p", port, "--no-live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=child,
    )


def _wait_until(what: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if proc.poll() is not None:
            raise AssertionError(f"line run ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out; line run said {proc.communicate()}")
        time.sleep(0.02)


def _finish(proc: subprocess.Popen[bytes], timeout: float) -> tuple[list[dict], str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"line run did not end within {timeout} s: {err.decode()}") from None
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    return lines, err.decode()


def _registry_is_clean(ca_dir: Path) -> list:
    with open_registry(str(ca_dir / "reg.sqlite")) as reg:
        assert reg.verify().ok
        assert reg.claims() == []
        return list(reg.iter_records())


def _in_write_step(jig: PtyJig) -> Callable[[], bool]:
    # HELLO and two LISTs are ~60 bytes; past 200 the host is sending the bundle (DATA).
    return lambda: jig.received > 200


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_finishes_the_device_in_flight(ca_dir: Path, slow_jig, sig) -> None:
    jig = slow_jig(4800)
    proc = _start(_config(ca_dir, 4800), jig.path)
    _wait_until(_in_write_step(jig), 30, proc)
    proc.send_signal(sig)
    lines, err = _finish(proc, 60)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert [d["status"] for d in lines] == ["ok"]
    assert "stopping: finishing devices in flight" in err
    records = _registry_is_clean(ca_dir)
    assert [(r.device_id, r.result) for r in records] == [(lines[0]["device_id"], Result.OK)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_second_signal_rolls_back_without_waiting_for_the_step(ca_dir: Path, slow_jig, sig) -> None:
    # The board stops answering in the middle of the bundle: the write step would wait
    # 6 tries x 3 s before failing, and a rollback as long again.
    jig = slow_jig(9600, silent_after="400")
    proc = _start(_config(ca_dir, 9600, timeout=3.0), jig.path)
    _wait_until(_in_write_step(jig), 30, proc)
    proc.send_signal(sig)
    time.sleep(0.3)
    proc.send_signal(sig)
    signalled = time.monotonic()
    lines, err = _finish(proc, 60)
    # The step ends at once; the rollback gets one reply timeout (3 s).
    assert time.monotonic() - signalled < 6.0, err
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "aborting: rolling back devices in flight" in err
    code = "interrupted.not_cleaned"  # the silent board never confirmed its DELETE
    assert [(d["status"], d["error_code"]) for d in lines] == [("rolled_back", code)]
    records = _registry_is_clean(ca_dir)
    assert [(r.result, r.error_code) for r in records] == [(Result.ROLLED_BACK, code)]


def test_second_signal_at_1200_baud_rolls_the_device_back(ca_dir: Path, slow_jig) -> None:
    jig = slow_jig(1200)
    proc = _start(_config(ca_dir, 1200), jig.path)
    _wait_until(_in_write_step(jig), 30, proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    lines, err = _finish(proc, 60)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    # The DELETE went out behind the bundle already on the line, and was confirmed.
    assert [(d["status"], d["error_code"]) for d in lines] == [("rolled_back", "interrupted")]
    records = _registry_is_clean(ca_dir)
    assert [(r.result, r.error_code) for r in records] == [(Result.ROLLED_BACK, "interrupted")]


def test_sigint_ignored_at_start_is_still_ignored_and_sigterm_stops(ca_dir: Path, slow_jig) -> None:
    jig = slow_jig(9600)
    proc = _start(_config(ca_dir, 9600), jig.path, ignore_sigint=True)
    _wait_until(_in_write_step(jig), 30, proc)
    proc.send_signal(signal.SIGINT)
    # Not meant for it (no terminal): a stopped line would end after this first device.
    _wait_until(lambda: jig.devices >= 3, 60, proc)
    _wait_until(_in_write_step(jig), 30, proc)
    proc.send_signal(signal.SIGTERM)
    lines, err = _finish(proc, 60)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert len(lines) >= 2 and {d["status"] for d in lines} == {"ok"}
    records = _registry_is_clean(ca_dir)
    assert len(records) == len(lines) and all(r.result is Result.OK for r in records)


def test_ctrl_c_at_the_terminal_stops_a_run_started_with_sigint_ignored(
    ca_dir: Path, slow_jig
) -> None:
    """A script run at a terminal: its `line run &` ignores SIGINT but is in the terminal's
    foreground process group, so the operator's Ctrl-C is meant for it."""
    jig = slow_jig(4800)
    config = _config(ca_dir, 4800)
    pid, fd = pty.fork()  # the child gets the pty as its controlling terminal
    if pid == 0:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.execv(EXE, [EXE, "line", "run", str(config), "-p", jig.path, "--no-live"])
    output = bytearray()

    def read_some(wait: float) -> None:
        ready, _, _ = select.select([fd], [], [], wait)
        if ready:
            with contextlib.suppress(OSError):  # EIO: the child is gone
                output.extend(os.read(fd, 65536))

    try:
        deadline = time.monotonic() + 30
        while jig.received <= 200 and time.monotonic() < deadline:
            read_some(0.02)
        assert jig.received > 200, output.decode(errors="replace")
        os.write(fd, b"\x03")  # Ctrl-C, through the terminal's line discipline
        deadline = time.monotonic() + 60
        status = None
        while status is None and time.monotonic() < deadline:
            read_some(0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
            status = status if done else None
        assert status is not None, output.decode(errors="replace")
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == ExitCode.INTERRUPTED, text
    assert "stopping: finishing devices in flight" in text
    assert text.count('"status": "ok"') == 1
    _registry_is_clean(ca_dir)


def test_stop_cuts_a_look_at_an_empty_port_short(station) -> None:
    """A port whose board does not answer (here an at-cmng jig; the station speaks native)
    spends tries x timeout per look: a stop does not wait for the look to end, and the port's
    reason for having no device stays the link's, not the interruption."""
    (jig,) = start_jigs(1, kind="at-cmng", baud=115200, prefix=f"empty{os.getpid()}-")
    try:
        cfg = station([jig.path], device_timeout=1.0, retries=2)  # a look: 3 s
        line = Line(cfg, operator="tester")
        stopped: list[float] = []

        def wait(line: Line) -> None:
            state = line.states[jig.path]
            deadline = time.monotonic() + 30
            while state.no_device is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.5)  # into the next look
            line.stop()
            stopped.append(time.monotonic())

        line.run(wait=wait)
        ended = time.monotonic()
    finally:
        jig.stop.set()
    assert ended - stopped[0] < 1.0
    reason = line.states[jig.path].no_device
    assert reason is not None and reason.startswith("link.timeout"), reason
