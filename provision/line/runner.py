"""Ports in parallel: one thread per port (the work is waiting on serial lines).

    line = Line(cfg, operator="alice", limit=100, emit=print_json)
    summary = line.run()          # until `limit` devices, or stop()/abort()

Stopping: `stop()` lets every port finish the device it has and then end (first SIGINT or
SIGTERM); `abort()` rolls devices in flight back and records them as rolled_back (second).
Either way every claim is released and the registry chain stays whole. Both cut a wait on a
port short at once where nothing is to be finished (`abort()` also the step in flight): a
step at 1200 baud takes tens of seconds.

At start the station releases claims its own name still holds: they were left by a run of
this station that was killed (SIGKILL, power loss), and would block those devices for the
lease (15 minutes). A station name belongs to one running `line run` at a time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import provision.device
from provision.device import Device, DeviceInfo
from provision.errors import UsageError
from provision.line.config import StationConfig, expand_ports
from provision.line.issuer import Issuer
from provision.line.station import (
    UNCLAIMED_STEPS,
    Interrupted,
    Outcome,
    StationContext,
    Status,
    Step,
    error_code,
    provision_one,
)
from provision.registry import Registry, open_registry


@dataclass
class PortState:
    port: str
    step: Step = Step.WAITING
    device_id: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    # The last failure's message, beside its code: what an operator acts on.
    last_message: str | None = None
    since: float = field(default_factory=time.monotonic)
    # Why the last look at the port found no device to work on ("code: message"): a wrong
    # dialect or a dead port otherwise looks like an empty jig forever.
    no_device: str | None = None


@dataclass(frozen=True)
class Summary:
    seconds: float
    counts: dict[str, int]
    failures: dict[str, int]  # error code → count
    ports: int

    @property
    def provisioned(self) -> int:
        return self.counts.get(Status.OK.value, 0)

    @property
    def devices_per_hour(self) -> float:
        return self.provisioned * 3600.0 / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "event": "summary",
            "seconds": round(self.seconds, 3),
            "ports": self.ports,
            "counts": dict(self.counts),
            "failures": dict(self.failures),
            "devices_per_hour": round(self.devices_per_hour, 1),
        }


Emit = Callable[[Outcome], None]


class Line:
    def __init__(
        self,
        cfg: StationConfig,
        *,
        operator: str,
        force: bool = False,
        limit: int | None = None,
        per_port: int | None = None,
        emit: Emit | None = None,
        registry: Registry | None = None,
        issuer: Issuer | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise UsageError("--count must be at least 1")
        self.cfg = cfg
        self.ports = expand_ports(cfg.ports)
        self.limit = limit
        self.per_port = per_port
        self._emit = emit or (lambda outcome: None)
        # The CA first: a config that cannot issue leaves no registry file behind.
        self.issuer = issuer or Issuer(cfg)
        self._own_registry = registry is None
        self.registry = registry or open_registry(cfg.registry)
        # Devices this station's killed run had in flight: free to take again.
        self.reclaimed = self.registry.release_station_claims(cfg.station)
        self.stopping = threading.Event()
        self.aborting = threading.Event()
        self.states = {p: PortState(p) for p in self.ports}
        self._lock = threading.Lock()
        self._tickets = 0
        self._counts: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()
        self.ctx = StationContext(
            cfg,
            self.issuer,
            self.registry,
            operator,
            force=force,
            abort=self.aborting,
            on_step=self._on_step,
            background=ThreadPoolExecutor(len(self.ports), thread_name_prefix="registry"),
        )

    # -- control --------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the devices in flight, then end."""
        self.stopping.set()

    def abort(self) -> None:
        """Roll back the devices in flight, then end."""
        self.stopping.set()
        self.aborting.set()

    def _interrupt(self, port: str) -> Callable[[], bool]:
        """For the port's transport: cut the current read or write short on abort (the
        rollback after a reply timeout), and on stop while the port holds no claim."""
        state = self.states[port]

        def interrupted() -> bool:
            if self.aborting.is_set():
                # A rollback gets one reply timeout: a device that stopped answering (often
                # why the operator aborts) must not hold the line for timeout x retries.
                return state.step is not Step.ROLLBACK or (
                    time.monotonic() - state.since > self.cfg.device_timeout
                )
            return self.stopping.is_set() and state.step in UNCLAIMED_STEPS

        return interrupted

    def _on_step(self, port: str, step: Step, device_id: str | None) -> None:
        state = self.states[port]
        state.step, state.device_id, state.since = step, device_id, time.monotonic()

    def _tickets_gone(self) -> bool:
        with self._lock:
            return self.limit is not None and self._tickets >= self.limit

    def _take_ticket(self) -> bool:
        with self._lock:
            if self.limit is not None and self._tickets >= self.limit:
                self.stopping.set()
                return False
            self._tickets += 1
            return True

    # -- running --------------------------------------------------------------------

    def run(self, *, wait: Callable[[Line], None] | None = None) -> Summary:
        """Run every port until done; `wait` (default: join) runs in the calling thread and
        may call stop()/abort() (the CLI refreshes its display and catches Ctrl-C there)."""
        t0 = time.monotonic()
        threads = [
            threading.Thread(target=self._port_loop, args=(p,), name=f"port {p}", daemon=True)
            for p in self.ports
        ]
        for t in threads:
            t.start()
        try:
            if wait is not None:
                wait(self)
        finally:
            # The caller may leave early (Ctrl-C twice); devices in flight still end cleanly.
            for t in threads:
                while t.is_alive():
                    t.join(0.1)
            if self.ctx.background is not None:
                self.ctx.background.shutdown()
            if self._own_registry:
                self.registry.close()
        return Summary(
            time.monotonic() - t0, dict(self._counts), dict(self._failures), len(self.ports)
        )

    def alive(self) -> bool:
        return any(s.step is not Step.STOPPED for s in self.states.values())

    def _port_loop(self, port: str) -> None:
        state = self.states[port]
        last_id: str | None = None
        done = 0
        try:
            while not self.stopping.is_set():
                if self.per_port is not None and done >= self.per_port:
                    break
                if self._tickets_gone():
                    break
                found = self._wait_for_device(port, last_id)
                if found is None:
                    break
                dev, info = found
                try:
                    if not self._take_ticket():
                        break
                    try:
                        outcome = provision_one(dev, info, port, self.ctx)
                    except Interrupted:
                        break
                    except Exception as err:  # a broken check step: report, keep the port
                        outcome = Outcome(
                            port, info.device_id, Status.FAILED, 0.0, error_code=error_code(err)
                        )
                finally:
                    dev.close()
                done += 1
                last_id = info.device_id
                self._account(state, outcome)
        finally:
            state.step, state.device_id = Step.STOPPED, None

    def _account(self, state: PortState, outcome: Outcome) -> None:
        with self._lock:
            self._counts[outcome.status.value] += 1
            state.counts[outcome.status.value] += 1
            if outcome.status in (Status.FAILED, Status.ROLLED_BACK, Status.BUSY):
                self._failures[outcome.error_code or "unknown"] += 1
                state.last_error = outcome.error_code
                state.last_message = outcome.message
            self._emit(outcome)

    def _wait_for_device(self, port: str, last_id: str | None) -> tuple[Device, DeviceInfo] | None:
        """Open the port until a device answers that is not the one just handled."""
        cfg = self.cfg
        self._on_step(port, Step.WAITING, None)
        attempt = 0
        if last_id is not None:
            # The board just done is still on the jig: opening at once only finds it again,
            # at the cost of a whole connect (an ESP32's reset, SYNC and chip detection).
            self.stopping.wait(min(cfg.poll_interval, 0.02))
        while not self.stopping.is_set() and not self._tickets_gone():
            dev: Device | None = None
            try:
                dev = provision.device.open(
                    port,
                    dialect=cfg.dialect,
                    baud=cfg.baud,
                    # --fast-baud: provision_one switches once the device is one to work on.
                    timeout=cfg.device_timeout,
                    retries=cfg.retries,
                    interrupt=self._interrupt(port),
                )
                self._on_step(port, Step.IDENTIFY, None)
                info = dev.info()
                self.states[port].no_device = None
                if info.device_id != last_id:
                    return dev, info
                # Still the device we just did: wait until the operator swaps it.
            except Interrupted:
                pass  # stopping: the loop ends below; not a reason the port has no device
            except Exception as err:
                self.states[port].last_error = error_code(err)
                self.states[port].last_message = str(err)
                self.states[port].no_device = f"{error_code(err)}: {err}"
            if dev is not None:
                dev.close()
            self._on_step(port, Step.WAITING, None)
            # Look again soon (a swap is often already done), then back off to poll_interval.
            self.stopping.wait(min(cfg.poll_interval, 0.02 * 2 ** min(attempt, 10)))
            attempt += 1
        return None


def run_line(cfg: StationConfig, **kwargs: Any) -> Summary:
    """Run a line to completion (no display): the library entry point for scripts;
    `kwargs` are Line's."""
    return Line(cfg, **kwargs).run()
