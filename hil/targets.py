"""Launch, stop and power-cut the targets in targets.toml. Used by hil/conftest.py.

A Target hands out URLs that `provision.device.open()` understands. Targets that can restart
keep their flash in a file under the given directory, so a restart (with or without a power
cut) boots the same flash.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import tomllib
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.pki.files import open_private

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = Path(__file__).with_name("targets.toml")
CUT_EXIT = 75  # the posix stub's exit status after a simulated power cut
QEMU_FLASH_SIZE = 3 * 32 * 1024  # firmware_stub/ports/mps2-an385: two banks and staging
POWER_CUT_MARK = b"provision-stub: power cut"  # firmware_stub/ports/nrf5 on semihosting


def manifest() -> dict[str, dict[str, Any]]:
    return tomllib.loads(MANIFEST.read_text())["targets"]


class TargetUnavailable(Exception):
    """The target cannot run here; str() says why and how to install what is missing."""


@dataclass
class Target:
    name: str
    spec: dict[str, Any]
    workdir: Path
    url: str | None = None  # given with --port for launch = "none" (or an already running one)
    processes: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)
    boots: int = 0
    qmp: dict[str, Path] = field(default_factory=dict)  # instance -> QEMU's QMP socket
    lines: dict[str, PtyLine] = field(default_factory=dict)  # instance -> its pty line

    @property
    def power_cut(self) -> bool:
        """Extra instances can be booted with a power cut after N flash bytes."""
        return bool(self.spec.get("power_cut")) and self.spec["launch"] != "none"

    @property
    def restart_supported(self) -> bool:
        """Extra instances can be stopped and booted again with their flash kept."""
        return bool(self.spec.get("restart")) and self.spec["launch"] != "none"

    @property
    def reconnect(self) -> bool:
        return bool(self.spec.get("reconnect"))

    # -- lifecycle
    def check_available(self) -> None:
        launch = self.spec["launch"]
        if launch == "posix" and not (shutil.which("cc") or shutil.which("gcc")):
            raise TargetUnavailable("no C compiler (apt install build-essential)")
        if launch == "qemu":
            missing = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc") if not shutil.which(t)]
            if missing:
                raise TargetUnavailable(
                    f"{', '.join(missing)} not installed (apt install qemu-system-arm "
                    "gcc-arm-none-eabi libnewlib-arm-none-eabi)"
                )
        if launch == "none" and not self.url:
            raise TargetUnavailable(f"target {self.name} needs --port URL")

    def build(self) -> None:
        cmd = self.spec.get("build")
        if not cmd:
            return
        # Several pytest processes may share firmware_stub/build: build one at a time.
        lock = ROOT / "firmware_stub" / "build" / ".make.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            subprocess.run(shlex.split(cmd), cwd=ROOT, check=True)

    def flash_path(self, instance: str = "main") -> Path:
        return self.workdir / f"{self.name}-{instance}.flash"

    def start(self, *, instance: str = "main", cut_after: int | None = None) -> str:
        """Power the device on (its flash kept) and return its URL."""
        self.boots += 1
        launch = self.spec["launch"]
        if launch == "none" or (self.url and instance == "main" and launch != "sim"):
            assert self.url
            return self.url  # a device someone else started: use it as it is
        if launch == "sim":
            url = f"{self.spec['url']}&flash={self.flash_path(instance)}"
            return url + (f"&flash_cut={cut_after}" if cut_after is not None else "")
        if launch == "posix":
            return self._start_posix(instance, cut_after)
        if launch == "qemu":
            return self._start_qemu(instance, cut_after)
        raise TargetUnavailable(f"unknown launch kind {launch!r}")

    def stop(self, instance: str | None = None) -> None:
        """Power off one instance (or every one) this target started; flash files stay."""
        names = [instance] if instance is not None else list(self.processes)
        failed: TargetUnavailable | None = None
        for name in names:
            line = self.lines.pop(name, None)
            if line:
                line.close()
            qmp = self.qmp.pop(name, None)
            if self.spec.get("flash") != "guest":
                qmp = None  # nothing of the board's to save: it is in a host file
            for proc in self.processes.pop(name, []):
                if qmp and proc.poll() is None:
                    try:
                        self._save_guest_flash(qmp, name, proc)
                    except TargetUnavailable as err:
                        failed = err  # still power it off below
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                for stream in (proc.stdout, proc.stderr):
                    if stream:
                        stream.close()
        if failed:
            raise failed

    def wait_power_cut(self, instance: str, timeout: float = 10.0) -> bool:
        """After a write under cut_after: True if the instance lost power (it exited)."""
        if self.spec["launch"] == "sim":
            return True  # the simulator reboots on its own; nothing to wait for
        deadline = time.monotonic() + timeout
        procs = self.processes.get(instance, [])
        if self.spec.get("flash") == "guest":
            # The board stops for good and says so on the semihosting console; QEMU stays up
            # until stop() has saved the flash.
            return all(_wait_stderr(p, POWER_CUT_MARK, deadline) for p in procs)
        for proc in procs:
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        return all(p.poll() is not None for p in procs)

    # -- launchers
    def _record(self, instance: str, proc: subprocess.Popen[bytes]) -> None:
        self.processes.setdefault(instance, []).append(proc)
        pidfile = os.environ.get("PROVISION_HIL_PIDFILE")
        if pidfile:  # hil/run-qemu kills whatever is listed here, whatever happens
            with open(pidfile, "a") as f:
                f.write(f"{proc.pid}\n")

    def _start_posix(self, instance: str, cut_after: int | None) -> str:
        binary = ROOT / self.spec["binary"]
        cmd = [str(binary), "--flash", str(self.flash_path(instance)), "--tcp", "0"]
        if cut_after is not None:
            cmd += ["--cut-after", str(cut_after)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._record(instance, proc)
        assert proc.stdout
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("socket://"):
            raise TargetUnavailable(f"posix stub did not start: {proc.stderr.read().decode()}")
        return line

    def _start_qemu(self, instance: str, cut_after: int | None) -> str:
        flash = self.flash_path(instance)
        guest = self.spec.get("flash") == "guest"
        size = int(self.spec["flash_size"]) if guest else QEMU_FLASH_SIZE
        if not flash.exists():  # erased flash; the firmware could fill it, but slowly
            # It will hold plaintext keys, like the board's flash: 0600 whatever the umask.
            with os.fdopen(open_private(flash, os.O_WRONLY), "wb") as fh:
                fh.write(b"\xff" * size)
        port = _free_port()
        elf = ROOT / self.spec["elf"]
        args = ["arg=fw"] if guest else ["arg=fw", f"arg=flash={flash}"]
        if cut_after is not None:
            args.append(f"arg=cut={cut_after}")
        cmd = [
            "qemu-system-arm", "-M", self.spec["machine"], "-nographic", "-monitor", "none",
            "-kernel", str(elf),
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on",
            "-semihosting-config", "enable=on,target=native," + ",".join(args),
        ]  # fmt: skip
        cmd += self._qmp_args(instance)
        if guest:
            cmd += self._guest_flash_args(instance, flash, elf)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._record(instance, proc)
        _wait_listening(port, proc)
        return f"socket://127.0.0.1:{port}"

    def _qmp_args(self, instance: str) -> list[str]:
        """A QMP socket per instance: the suite reads registers (rated_line) and saves a
        guest flash (stop) through it."""
        qmp = self.workdir / f"{self.name}-{instance}.qmp"
        qmp.unlink(missing_ok=True)
        self.qmp[instance] = qmp
        return ["-qmp", f"unix:{qmp},server=on,wait=off"]

    # -- a store in the emulated chip's own flash (flash = "guest")
    def _guest_flash_args(self, instance: str, flash: Path, elf: Path) -> list[str]:
        """Put the saved store back into the chip's flash at boot (stop() saves it through
        QMP). QEMU 7.2's microbit has no block backend for its flash (the NVMC model keeps
        it in a ROM device), so the region goes in with the generic loader and out with QMP
        memsave. The loader must name the CPU (the flash is in the SoC's own address space,
        not in system memory), which also sets the PC to the load address: a second loader
        sets it back to the image's entry point (after the CPU's reset has taken SP from the
        vector table)."""
        entry = struct.unpack_from("<I", elf.read_bytes(), 0x18)[0]  # e_entry, Thumb bit set
        base = int(self.spec["flash_base"])
        return [
            "-device", f"loader,file={flash},addr={base:#x},force-raw=on,cpu-num=0",
            "-device", f"loader,addr={entry:#x},cpu-num=0",
        ]  # fmt: skip

    def read_register(self, instance: str, address: int) -> int:
        """A 32-bit word of the instance's address space as its CPU sees it (QMP `xp`): a
        peripheral register read-back, without the firmware's help."""
        qmp = self.qmp.get(instance)
        if qmp is None:
            raise TargetUnavailable(f"{self.name} instance {instance} has no QMP socket")
        reply = _qmp(qmp, [("human-monitor-command", {"command-line": f"xp /1wx {address:#x}"})])
        return int(str(reply[-1]).split(":")[1].split()[0], 16)

    # -- a line with a rate (CHANGE_BAUD)
    def rated_line(self, instance: str = "baud") -> str:
        """A URL of a device instance whose port has a line rate, so a host may switch it
        (socket:// has none): the simulator with its line model at 115200 baud; the posix
        stub and QEMU on their TCP port behind a pty (PtyLine: the host's termios changes,
        the bytes pass unpaced, as QEMU's chardev does not pace them either); a board on its
        serial port."""
        launch = self.spec["launch"]
        if launch == "sim":
            url = self.spec["url"].replace("baud=0", "baud=115200")
            return f"{url}&flash={self.flash_path(instance)}"
        if launch == "none":
            assert self.url
            if "://" in self.url:
                raise TargetUnavailable(f"{self.url} has no line rate to switch")
            return self.url
        url = self.start(instance=instance)
        line = PtyLine(url)
        self.lines[instance] = line
        return line.path

    def _save_guest_flash(self, qmp: Path, instance: str, proc: subprocess.Popen[bytes]) -> None:
        """Write the chip's store region to the instance's flash file, then end QEMU."""
        try:
            _qmp(qmp, [
                ("memsave", {
                    "val": int(self.spec["flash_base"]),
                    "size": int(self.spec["flash_size"]),
                    "filename": str(self.flash_path(instance)),
                    "cpu-index": 0,
                }),
                ("quit", {}),
            ])  # fmt: skip
            proc.wait(timeout=5)
        except (TargetUnavailable, subprocess.TimeoutExpired) as err:
            raise TargetUnavailable(f"could not save the flash of {self.name} ({err})") from err


def _qmp(path: Path, commands: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Run QMP commands on QEMU's socket; their returns, in order."""
    results = []
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            stream = sock.makefile("rwb")
            stream.readline()  # the greeting
            for command, arguments in [("qmp_capabilities", {}), *commands]:
                stream.write(json.dumps({"execute": command, "arguments": arguments}).encode())
                stream.write(b"\n")
                stream.flush()
                while True:
                    reply = json.loads(stream.readline() or b"{}")
                    if "error" in reply:
                        raise TargetUnavailable(f"QMP {command}: {reply['error']}")
                    if "return" in reply or not reply:  # no reply: QEMU quit
                        results.append(reply.get("return"))
                        break
    except (OSError, ValueError) as err:
        raise TargetUnavailable(f"QMP on {path}: {err}") from err
    return results[1:]


class PtyLine:
    """A pty whose far end is joined to a device's socket:// URL, byte for byte: the host
    opens `path` as a serial port (so it has a rate to set, as on a board's USB serial).
    The bridge keeps its own handle on the pty's device end, so the host may close and
    reopen it."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("socket://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._stop_r, self._stop_w = os.pipe()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sock = self.sock.fileno()
        while True:
            ready, _, _ = select.select([self.master, sock, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                if self.master in ready:
                    self.sock.sendall(os.read(self.master, 4096))
                if sock in ready:
                    data = self.sock.recv(4096)
                    if not data:
                        return
                    os.write(self.master, data)
            except OSError:
                return

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self.thread.join(timeout=5)
        self.sock.close()
        for fd in (self.master, self.slave, self._stop_r, self._stop_w):
            os.close(fd)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_stderr(proc: subprocess.Popen[bytes], mark: bytes, deadline: float) -> bool:
    """Has the process written `mark` on stderr (non-blocking, set by _wait_listening)?"""
    assert proc.stderr
    seen = b""
    while time.monotonic() < deadline:
        seen += proc.stderr.read() or b""
        if mark in seen:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Readiness probe: QEMU prints that it waits for a connection once it listens."""
    assert proc.stderr
    os.set_blocking(proc.stderr.fileno(), False)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TargetUnavailable(
                f"qemu exited at boot: {(seen + proc.stderr.read() or b'').decode()}"
            )
        chunk = proc.stderr.read() or b""
        seen += chunk
        if b"waiting for connection" in seen:
            return
        time.sleep(0.02)
    raise TargetUnavailable(f"qemu did not listen on 127.0.0.1:{port} within {timeout:g} s")


def resolve(port: str | None, target_name: str | None, workdir: Path) -> Target:
    """--port / --target (or PROVISION_HIL_PORT / PROVISION_HIL_TARGET) → Target.

    --port NAME picks a target from the manifest; --port URL is a device you provide,
    described by --target (default: sim for sim:// URLs, else board)."""
    targets = manifest()
    if port in targets and not target_name:
        target_name, port = port, None
    if not target_name:
        target_name = "sim" if (port or "sim://").startswith("sim://") else "board"
    if target_name not in targets:
        raise TargetUnavailable(f"unknown target {target_name!r} (known: {', '.join(targets)})")
    spec = dict(targets[target_name])
    if port and spec["launch"] == "sim":
        spec["url"] = port if "?" in port else port + "?baud=0"
    # With a URL, the main device is the one you started (the suite never restarts it);
    # power-cut and restart tests boot their own instances of a launchable target.
    return Target(target_name, spec, workdir, url=None if spec["launch"] == "sim" else port)
