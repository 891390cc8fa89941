"""The host's side of one bundle transfer (BEGIN → DATA… → COMMIT), as a state machine.

Sans-IO like the rest of provision.link: `poll(now)` says what to send, `sent(...)` is told
when that copy reaches the device (the drive loop knows the line time), `receive(frame, now)`
takes each frame that came back, `wakeup()` says when `poll` has work again. It never reads
a port or a clock. Every transition of the transfer lives here; the drive loop in
provision.dialects.native only moves bytes and time.

States: SENDING (BEGIN out, DATA within the window) → COMMITTING (COMMIT out, waiting for
COMMITTED) → DONE. An INCOMPLETE answer to COMMIT goes back to SENDING until the device holds
everything; NO_TRANSFER (the device restarted and lost it) restarts from BEGIN; a lost
device (retransmission timeouts without progress) sends BEGIN again, which resumes.
Failures raise LinkError (the line or the device's liveness) or the device's ERROR reply.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from provision.errors import LinkError
from provision.link import messages as m
from provision.link.chunking import MIN_SAMPLE, ChunkSizer
from provision.link.host import HostLink, TransferSender, device_error


class State(enum.Enum):
    SENDING = "sending"
    COMMITTING = "committing"
    DONE = "done"


@dataclass(frozen=True)
class Limits:
    retries: int  # retransmission timeouts, COMMIT retries and restarts each allowed
    timeout: float  # seconds a COMMIT answer may take once the device holds everything
    budget: float  # seconds the whole transfer may take


class HostTransfer:
    """One transfer of `bundle`, from the first BEGIN to the device's COMMITTED."""

    def __init__(
        self,
        link: HostLink,
        transfer_id: int,
        bundle: bytes,
        *,
        chunk_size: int,
        window: int,
        rto: float,
        limits: Limits,
        now: float,
        sizer: ChunkSizer | None = None,
        lean: bool = False,
        hold_commit: bool = False,
    ) -> None:
        self.link = link
        self.limits = limits
        # Adapts the chunk size to the losses seen (provision.link.chunking); None: fixed.
        self.sizer = sizer
        self.rechunks = 0
        self.sha256 = hashlib.sha256(bundle).digest()
        self.sender = TransferSender(
            transfer_id, bundle, chunk_size, window, rto=rto, rto_max=limits.timeout, lean=lean
        )
        # A transfer started before HELLO_INFO came back (the session open pipelined) may
        # not COMMIT until the host has checked the set against the device's limits.
        self.hold_commit = hold_commit
        self.deadline = now + limits.budget
        self.state = State.SENDING
        self.committed: m.Committed | None = None
        self.restarts = 0
        self._epoch: set[int] = set()  # seqs sent since the latest BEGIN
        self._begin_seq: int | None = None
        self._commit_seq: int | None = None
        self._commit_deadline = 0.0
        self._commit_tries = 0
        self._wait_complete = False  # after INCOMPLETE: COMMIT again only once all is held
        self._commit_sent = False  # any COMMIT of this transfer went out (outcome unknown)
        self._outbox: list[tuple[m.Message, int]] = []
        self._sampled = (0, 0)  # the sender's (copies, retransmissions) at the last sample
        self._begin()

    # -- what to send ---------------------------------------------------------------------
    @property
    def total(self) -> int:
        return self.sender.total

    @property
    def acked_bytes(self) -> int:
        return self.sender.total if self.state is State.DONE else self.sender.acked_bytes

    def poll(self, now: float) -> list[tuple[m.Message, int]]:
        """The frames to send now, with their sequence numbers."""
        if self.state is State.DONE:
            return []
        if now >= self.deadline:
            if self._commit_sent:
                # A COMMIT went out (then INCOMPLETE, or no answer): it may have been the
                # one that applied the set.
                raise LinkError(
                    f"transfer did not finish within {self.limits.budget:.1f} s after a COMMIT "
                    "went out, so the device holds either its old set or the new one, whole: "
                    "`provision device verify` tells which",
                    code="link.commit_unknown",
                )
            raise LinkError(
                f"transfer did not finish within {self.limits.budget:.1f} s "
                f"({self.sender.acked_bytes} of {self.sender.total} bytes acknowledged)",
                code="link.timeout",
            )
        sender = self.sender
        if self.state is State.SENDING:
            self._adapt_chunks()
        timeouts_before = sender.timeouts
        for data in sender.due(now):
            seq = 0  # a DATA_LEAN frame has no seq
            if isinstance(data, m.Data):
                seq = self.link.next_seq()
                self._epoch.add(seq)
            self._outbox.append((data, seq))
        if sender.timeouts > timeouts_before:
            if sender.timeouts > self.limits.retries:
                if self._commit_sent:
                    # Its answers may all have been lost while it took everything, and
                    # the COMMIT too: the outcome is not known.
                    raise LinkError(
                        "the device stopped answering after a COMMIT went out, so it holds "
                        "either its old set or the new one, whole: `provision device "
                        "verify` tells which",
                        code="link.commit_unknown",
                    )
                raise LinkError(
                    "the device stopped answering during the transfer "
                    f"({sender.acked_bytes} of {sender.total} bytes acknowledged)",
                    code="link.timeout",
                )
            # Maybe the device restarted or the link dropped: BEGIN again resumes or
            # restarts, as the device's answer will tell.
            self._begin()
        ready = sender.complete if self._wait_complete else sender.all_sent
        if ready and self._commit_seq is None and not self.hold_commit:
            self.state = State.COMMITTING
            self._commit_seq = self.link.next_seq()
            self._commit_deadline = float("inf")  # set by sent()
            self._outbox.append((m.Commit(sender.transfer_id), self._commit_seq))
        elif self._commit_seq is not None and now >= self._commit_deadline:
            self._commit_tries += 1
            if self._commit_tries > self.limits.retries:
                raise LinkError("no answer to COMMIT", code="link.timeout")
            self._commit_deadline = float("inf")
            self._outbox.append((m.Commit(sender.transfer_id), self._commit_seq))
        out, self._outbox = self._outbox, []
        return out

    def sent(self, msg: m.Message, seq: int, arrival: float) -> None:
        """`msg` (from poll) will have reached the device at `arrival`."""
        if isinstance(msg, m.Data | m.DataLean):
            if msg.transfer_id == self.sender.transfer_id:  # not one cut before a rechunk
                offset = (
                    msg.offset if isinstance(msg, m.Data) else msg.index * self.sender.chunk_size
                )
                self.sender.sent(offset, arrival)
        elif isinstance(msg, m.Commit) and seq == self._commit_seq:
            self._commit_sent = True
            # The first COMMIT may be early (DATA still in flight): wait a retransmission
            # time; a repeated one waits the full answer timeout.
            wait = self.sender.rto if self._commit_tries == 0 else self.limits.timeout
            self._commit_deadline = arrival + wait

    def wakeup(self) -> float:
        """When `poll` next has something to do (at the latest: the transfer's deadline)."""
        waits = [self.deadline]
        next_deadline = self.sender.next_deadline()
        if next_deadline is not None:
            waits.append(next_deadline)
        if self._commit_seq is not None:
            waits.append(self._commit_deadline)
        return min(waits)

    # -- what came back -------------------------------------------------------------------
    def receive(self, frame: m.Frame, now: float) -> None:
        msg = frame.message
        sender = self.sender
        if isinstance(msg, m.Ack):
            sender.on_ack(msg, now, authoritative=frame.seq == self._begin_seq)
        elif isinstance(msg, m.Nak):
            sender.on_nak(msg, now)
        elif isinstance(msg, m.Committed) and frame.seq == self._commit_seq:
            self.committed = msg
            self.state = State.DONE
        elif isinstance(msg, m.Error):
            self._on_error(frame.seq, msg)

    def _on_error(self, seq: int, msg: m.Error) -> None:
        if seq == self._commit_seq and msg.code == m.ErrorCode.INCOMPLETE:
            self._commit_seq = None  # COMMIT again once everything is held
            self._wait_complete = True
            self.state = State.SENDING
            return
        # DATA_LEAN frames carry no seq: their answers come with seq 0.
        lean_data = seq == 0 and self.sender.lean and msg.request == m.MsgType.DATA_LEAN
        ours = lean_data or seq in self._epoch or seq in (self._begin_seq, self._commit_seq)
        in_epoch = lean_data or seq in self._epoch
        if msg.code == m.ErrorCode.NO_TRANSFER and (in_epoch or seq == self._commit_seq):
            self.restarts += 1
            if self.restarts > self.limits.retries:
                if self._commit_sent:
                    # A COMMIT whose COMMITTED was lost is answered NO_TRANSFER when sent
                    # again: the device may well have committed.
                    raise LinkError(
                        "the device keeps losing the transfer (restarting?) after a COMMIT "
                        "went out, so it holds either its old set or the new one, whole: "
                        "`provision device verify` tells which",
                        code="link.commit_unknown",
                    )
                raise LinkError(
                    "the device keeps losing the transfer (restarting?)", code="link.restarts"
                )
            self.sender.restart()  # same size: a grown one waits for the next transfer
            self._commit_seq = None
            self.state = State.SENDING
            self._begin()
        elif ours:
            raise device_error(msg)
        # Anything else answers an earlier request: a late copy, ignored.

    def _adapt_chunks(self) -> None:
        """Judge the losses of the DATA sent since the last sample; restart at a smaller
        chunk when the sizer says the current one costs more than starting over."""
        sender, sizer = self.sender, self.sizer
        if sizer is None:
            return
        copies = sender.copies - self._sampled[0]
        losses = sender.retransmissions - self._sampled[1]
        # A window's worth, or sooner two losses: at 1,018-byte chunks on a bad line a
        # window's worth is kilobytes of frames that mostly arrive broken.
        if copies < max(MIN_SAMPLE, sender.window) and not (losses >= 2 and copies >= 2):
            return
        sizer.sample(sender.chunk_size, copies, losses)
        self._sampled = (sender.copies, sender.retransmissions)
        if sizer.shrink_now(sender.chunk_size, sender.acked_bytes, sender.total):
            self._rechunk(sizer.size)
            self._wait_complete = False
            self._begin()

    def _rechunk(self, size: int) -> None:
        self.rechunks += 1
        # A new transfer id: ACKs and NAKs of the old chunking can then not be taken for
        # answers about the new one.
        self.sender.rechunk(size, self.sender.transfer_id % 0xFFFF + 1)
        self._sampled = (self.sender.copies, self.sender.retransmissions)

    def _begin(self) -> None:
        self._epoch.clear()
        self._begin_seq = self.link.next_seq()
        self._epoch.add(self._begin_seq)
        self._outbox.append((self.sender.begin(self.sha256), self._begin_seq))
