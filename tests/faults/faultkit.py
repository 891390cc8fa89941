"""One provisioning session against a simulated device (sim://, virtual clock) with faults,
and what it must be true of: the dialect's stated guarantee and an honest outcome.

A session opens a device whose flash holds OLD, runs `Device.provision(NEW)` (the job the
CLI runs) and then mounts the same flash in a fresh, fault-free device to read what it
holds. `check_truth` is the assertion every fault test shares: success means the new set;
a failure is one line that says what the device holds, and the device holds the old set,
the new set, or (where the dialect declares no atomic commit) an incomplete set, never old
and new slots together.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.device import Device
from provision.dialects import dialect_profile, session_class
from provision.dialects.base import Capability
from provision.errors import ProvisionError
from provision.sim.serve import SimTransport, build_runner
from provision.transport.base import transport_clock

# Device options that let every dialect hold the test sets (at-shell: a command buffer
# that takes a certificate; its default of 256 refuses every one, before any write).
DEVICE_OPTIONS: dict[str, dict[str, str]] = {"at-shell": {"cmd_buff_size": "4096"}}


SETS = Path(__file__).parent / "sets"


@functools.cache
def sets(renewal: bool = False) -> tuple[CredentialSet, CredentialSet]:
    """OLD and NEW: sec_tag 42, root_ca + client_cert + client_key (P-256, small enough for
    the zephyr shell's 1024-byte credential buffer). Made once with provision.pki and kept
    in tests/faults/sets: seeded faults replay only over the same bytes. `renewal`: OLD has
    NEW's root_ca (a device renewing its certificate and key under the same CA)."""
    out = []
    for name in ("old", "new"):
        out.append(
            CredentialSet.of(
                [
                    Slot(
                        42, SlotType.ROOT_CA, Encoding.PEM, (SETS / f"{name}-root.pem").read_bytes()
                    ),
                    Slot(
                        42,
                        SlotType.CLIENT_CERT,
                        Encoding.PEM,
                        (SETS / f"{name}-cert.pem").read_bytes(),
                    ),
                    Slot(
                        42,
                        SlotType.CLIENT_KEY,
                        Encoding.PEM,
                        (SETS / f"{name}-key.pem").read_bytes(),
                    ),
                ]
            )
        )
    if renewal:
        kept = [s for s in out[0] if s.type is not SlotType.ROOT_CA]
        out[0] = CredentialSet.of([out[1].get(42, SlotType.ROOT_CA), *kept])
    return out[0], out[1]


def digests(dialect: str, credentials: CredentialSet) -> dict:
    forms = dialect_profile(dialect).stored_forms(credentials)
    return {k: hashlib.sha256(v).digest() for k, v in forms.items()}


def sim_url_options(dialect: str, flash: Path, faults: dict[str, object]) -> dict[str, str]:
    options = {"flash": str(flash), **DEVICE_OPTIONS.get(dialect, {})}
    options.update({k: str(v) for k, v in faults.items() if v is not None})
    return options


def open_device(dialect: str, options: dict[str, str], timeout: float, retries: int):
    transport = SimTransport(build_runner(dialect, options, None))
    return transport, session_class(dialect)(transport, timeout=timeout, retries=retries)


def base_flash(dialect: str, folder: Path, renewal: bool = False) -> Path:
    """A flash file whose device holds OLD (written once per dialect and folder)."""
    path = folder / f"{dialect}-old{'-renewal' if renewal else ''}.flash"
    if not path.exists():
        _, session = open_device(dialect, sim_url_options(dialect, path, {}), 1.0, 1)
        # OLD of a renewal chains to another root: set-up, not what is tested.
        Device(session, dialect).provision(sets(renewal)[0], force=True)
        session.close()
    return path


@dataclass
class Outcome:
    dialect: str
    faults: dict[str, object]
    phase: str  # "open" (no session), "write" (the job ran), "ok"
    error: ProvisionError | None
    seconds: float  # virtual
    held: dict
    received: int  # bytes the device received
    renewal: bool = False  # OLD shares NEW's root_ca

    @property
    def where(self) -> str:
        return f"{self.dialect} {self.faults}: {self.phase} {self.error}"


def run_session(
    dialect: str,
    folder: Path,
    faults: dict[str, object],
    *,
    timeout: float = 0.3,
    retries: int = 2,
    name: str = "x",
    pipeline: bool = False,
    renewal: bool = False,
) -> Outcome:
    flash = folder / f"{dialect}-{name}.flash"
    shutil.copy(base_flash(dialect, folder, renewal), flash)
    options = sim_url_options(dialect, flash, faults)
    transport = SimTransport(build_runner(dialect, options, None))
    clock = transport_clock(transport)
    phase, error = "open", None
    try:
        # pipeline: a native session opened as `device write` opens it (the transfer goes
        # out before HELLO's answer; docs/protocol.md §3.1).
        extra = {"pipeline": True} if pipeline else {}
        session = session_class(dialect)(transport, timeout=timeout, retries=retries, **extra)
        phase = "write"
        Device(session, dialect).provision(sets()[1])
        phase = "ok"
    except ProvisionError as err:  # anything else fails the test with its traceback
        error = err
    seconds, received = clock(), transport.runner.rx_count
    transport.close()
    # A fresh power-on over the same flash, on a clean line: what the device now holds.
    _, reader = open_device(dialect, sim_url_options(dialect, flash, {}), 1.0, 2)
    held = {(s.sec_tag, s.type): s.sha256 for s in reader.list()}
    reader.close()
    flash.unlink()
    return Outcome(dialect, faults, phase, error, seconds, held, received, renewal)


def state_words(dialect: str, held: dict, renewal: bool = False) -> dict:
    """Each slot of the tag as new, old or missing (or other: neither set's bytes; same:
    the content both sets give it)."""
    old, new = (digests(dialect, s) for s in sets(renewal))
    words = {}
    for key in new:
        if key not in held:
            words[key] = "missing"
        elif held[key] == new[key] == old.get(key):
            words[key] = "same"
        elif held[key] == new[key]:
            words[key] = "new"
        elif held[key] == old.get(key):
            words[key] = "old"
        else:
            words[key] = "other"
    return words


def check_truth(out: Outcome, bound_s: float) -> str:
    """Assert what every session must satisfy; returns the kind of end ("ok", "old",
    "new", "partial") for the caller's tallies."""
    old, new = (digests(out.dialect, s) for s in sets(out.renewal))
    assert out.seconds <= bound_s, f"{out.where}: took {out.seconds:.1f} s (virtual)"
    # A command header the line garbled can make a modem store a credential under another
    # tag or type (AT has no checksum; the zephyr driver sees the shell say so and deletes
    # it, at-cmng's OK does not say where): such strays are counted.
    tags = {k[0] for k in new}
    strays = {k for k in out.held if k[0] not in tags}
    # What a write ends with success has no copy of its own content left under another
    # tag (the job deletes such strays after the write); after a failure the listing that
    # would find them may have failed too.
    ours = {k for k in strays if out.held[k] in set(new.values())}
    assert not (out.error is None and ours), f"{out.where}: success leaves our content at {ours}"
    held = {k: v for k, v in out.held.items() if k not in strays}
    extra = set(held) - set(new)
    if extra:
        assert out.error is not None, f"{out.where}: success with extra slots {extra}"
        unread = "reading it back failed" in out.error.message
        for tag, slot in extra:
            said = any(
                f"sec_tag {tag} {slot.label} {word}" in out.error.message
                for word in ("unknown content", "not the new content")
            )
            assert said or unread, out.where
    held = {k: v for k, v in held.items() if k in new}
    out = dataclasses.replace(out, held=held)
    words = state_words(out.dialect, out.held, out.renewal)
    if out.error is None:
        assert out.held == new, f"{out.where}: success but the device holds {words}"
        return "stray" if strays else "ok"
    message = out.error.message
    assert message and "\n" not in message and "BEGIN" not in message, out.where
    kinds = set(words.values())
    # Never a silent mix: old slots beside new ones (or beside a new write the line garbled
    # and rewrites could not fix, which only the writing phase leaves), whatever the dialect.
    assert not ("old" in kinds and kinds & {"new", "other"}), f"{out.where}: mix {words}"
    state = "old" if out.held == old else "new" if out.held == new else "partial"
    atomic = dialect_profile(out.dialect).can(Capability.ATOMIC_COMMIT)
    if atomic:
        assert state in ("old", "new"), f"{out.where}: {words}"  # never anything else
        if state == "new":
            # Only a COMMIT whose answer was lost ends in an error with the new set in place.
            assert out.error.code == "link.commit_unknown", out.where
        return f"{state}+stray" if strays else state
    if out.phase == "open":
        assert state == "old", out.where  # no session: nothing was sent that writes
        return f"{state}+stray" if strays else state
    # A byte stalled on the line past the host's patience can still reach the device after
    # the host has read it back (a real line does that too): the report is then a snapshot
    # the late command changed. Without stalls, the report is the device's state, word for
    # word.
    exact = not out.faults.get("stall")
    if "nothing written" in message or "still holds its old set" in message:
        assert state == "old" or not exact, out.where
    elif "holds the whole new set" in message:
        assert state == "new" or not exact, out.where
    elif "may hold a partial set" in message:
        if exact and "reading it back failed" not in message:
            for (tag, slot), word in words.items():
                # The job names content both sets give a slot "new" (it checks new first).
                word = {"other": "unknown content", "same": "new"}.get(word, word)
                said = f"sec_tag {tag} {slot.label} "
                unread = said + "present (digest not readable)"
                unknown_before = word != "new" and said + "not the new content" in message
                assert said + word in message or unread in message or unknown_before, out.where
    else:
        raise AssertionError(f"{out.where}: the error does not say what the device holds")
    return f"{state}+stray" if strays else state
