"""The host's transfer state machine (provision.link.transfer), driven without any IO: every
transition of BEGIN → DATA → COMMIT, INCOMPLETE, a device restart, timeouts and budgets."""

from __future__ import annotations

import hashlib

import pytest

from provision.errors import DeviceError, LinkError
from provision.link import messages as m
from provision.link.host import HostLink
from provision.link.transfer import HostTransfer, Limits, State

BUNDLE = bytes(range(256)) * 10  # 2,560 bytes: 5 chunks of 512


def machine(retries: int = 2, budget: float = 100.0) -> HostTransfer:
    return HostTransfer(
        HostLink(first_seq=1),
        77,
        BUNDLE,
        chunk_size=512,
        window=4,
        rto=0.5,
        limits=Limits(retries=retries, timeout=1.0, budget=budget),
        now=0.0,
    )


def send(t: HostTransfer, now: float) -> list[tuple[m.Message, int]]:
    out = t.poll(now)
    for msg, seq in out:
        t.sent(msg, seq, now)
    return out


def ack(t: HostTransfer, seq: int, cumulative: int, now: float = 0.0) -> None:
    t.receive(m.Frame(seq, m.Ack(77, cumulative, 0)), now)


def kinds(sent: list[tuple[m.Message, int]]) -> list[str]:
    return [type(msg).__name__ for msg, _ in sent]


def committed(count: int = 1) -> m.Committed:
    return m.Committed(77, count, b"\x00" * 32)


def test_begin_then_a_window_of_data_then_commit_then_done() -> None:
    t = machine()
    first = send(t, 0.0)
    assert kinds(first) == ["Begin", "Data", "Data", "Data", "Data"]
    begin_seq = first[0][1]
    ack(t, begin_seq, 4 * 512)
    rest = send(t, 0.1)
    assert kinds(rest) == ["Data", "Commit"]
    assert t.state is State.COMMITTING
    ack(t, rest[0][1], len(BUNDLE))
    t.receive(m.Frame(rest[1][1], committed()), 0.2)
    assert t.state is State.DONE and t.committed is not None
    assert t.acked_bytes == t.total == len(BUNDLE)
    assert t.poll(0.3) == []


def test_incomplete_goes_back_to_sending_and_commits_once_all_is_held() -> None:
    t = machine()
    begin_seq = send(t, 0.0)[0][1]
    ack(t, begin_seq, 2 * 512)
    commit = send(t, 0.0)
    assert kinds(commit) == ["Data", "Commit"]
    t.receive(m.Frame(commit[1][1], m.Error(m.ErrorCode.INCOMPLETE, m.MsgType.COMMIT, "")), 0.1)
    assert t.state is State.SENDING
    ack(t, begin_seq, 3 * 512)
    assert "Commit" not in kinds(send(t, 0.2))  # not before the device holds everything
    ack(t, begin_seq, len(BUNDLE))
    assert kinds(send(t, 0.3)) == ["Commit"]


def test_a_device_that_lost_the_transfer_is_sent_begin_and_everything_again() -> None:
    t = machine()
    first = send(t, 0.0)
    data_seq = first[1][1]
    t.receive(m.Frame(data_seq, m.Error(m.ErrorCode.NO_TRANSFER, m.MsgType.DATA, "")), 0.1)
    again = send(t, 0.2)
    assert kinds(again)[0] == "Begin" and kinds(again).count("Data") == 4
    assert t.restarts == 1


def test_restarts_are_bounded() -> None:
    t = machine(retries=1)
    lost = m.Error(m.ErrorCode.NO_TRANSFER, m.MsgType.DATA, "")
    t.receive(m.Frame(send(t, 0.0)[1][1], lost), 0.0)
    assert t.restarts == 1
    with pytest.raises(LinkError, match="keeps losing"):
        t.receive(m.Frame(send(t, 0.0)[1][1], lost), 0.0)


def test_a_device_error_to_our_request_is_raised_and_a_late_one_ignored() -> None:
    t = machine()
    begin_seq = send(t, 0.0)[0][1]
    t.receive(m.Frame(begin_seq - 1, m.Error(m.ErrorCode.BUSY, m.MsgType.BEGIN, "")), 0.0)
    with pytest.raises(DeviceError):
        t.receive(m.Frame(begin_seq, m.Error(m.ErrorCode.FLASH, m.MsgType.BEGIN, "")), 0.0)


def test_silence_resends_begin_then_gives_up_after_the_retries() -> None:
    t = machine(retries=2)
    send(t, 0.0)
    now = 0.0
    resent: list[str] = []
    with pytest.raises(LinkError, match="stopped answering"):
        for _ in range(10):
            now = t.wakeup()
            resent += kinds(send(t, now))
    assert resent.count("Begin") == 2  # one per timeout within the retries


def test_the_budget_bounds_the_whole_transfer() -> None:
    t = machine(budget=5.0)
    send(t, 0.0)
    assert t.wakeup() <= 5.0
    with pytest.raises(LinkError, match=r"within 5\.0 s"):
        t.poll(5.0)


# -- lean transfers (Feature.LEAN) and a start before HELLO_INFO


def lean_machine(**kw: object) -> HostTransfer:
    return HostTransfer(
        HostLink(first_seq=1),
        77,
        BUNDLE,
        chunk_size=1000,
        window=1,
        rto=0.5,
        limits=Limits(retries=2, timeout=1.0, budget=100.0),
        now=0.0,
        lean=True,
        **kw,  # type: ignore[arg-type]
    )


def test_lean_transfer_sends_begin_lean_and_indexed_data_lean_without_seqs() -> None:
    t = lean_machine()
    first = send(t, 0.0)
    assert kinds(first) == ["BeginLean", "DataLean"]
    begin, (data, data_seq) = first[0][0], first[1]
    assert isinstance(begin, m.BeginLean)
    assert begin.digest == hashlib.sha256(BUNDLE).digest()[:4]
    assert isinstance(data, m.DataLean) and (data.index, data_seq) == (0, 0)
    t.sender.set_window(4)  # HELLO_INFO came: the device's window
    ack(t, first[0][1], 1000)
    rest = send(t, 0.1)
    assert [(type(x).__name__, getattr(x, "index", None)) for x, _ in rest] == [
        ("DataLean", 1),
        ("DataLean", 2),
        ("Commit", None),
    ]


def test_a_held_commit_waits_until_the_host_releases_it() -> None:
    t = lean_machine(hold_commit=True)
    t.sender.set_window(4)
    out = send(t, 0.0)
    assert "Commit" not in kinds(out) and t.sender.all_sent
    assert "Commit" not in kinds(send(t, 0.1))
    t.hold_commit = False  # HELLO_INFO in and the set fits
    assert kinds(send(t, 0.2)) == ["Commit"]


def test_no_transfer_for_a_data_lean_comes_at_seq_0_and_restarts() -> None:
    t = lean_machine()
    send(t, 0.0)
    lost = m.Error(m.ErrorCode.NO_TRANSFER, m.MsgType.DATA_LEAN, "no lean transfer 77")
    t.receive(m.Frame(0, lost), 0.1)
    assert t.restarts == 1 and kinds(send(t, 0.1))[0] == "BeginLean"
    # An ERROR at seq 0 about something else is not this transfer's.
    t.receive(m.Frame(0, m.Error(m.ErrorCode.NO_TRANSFER, m.MsgType.DATA, "")), 0.2)
    assert t.restarts == 1


def test_the_budget_running_out_after_a_commit_went_out_is_commit_unknown() -> None:
    t = machine(budget=5.0)
    first = send(t, 0.0)
    ack(t, first[0][1], 4 * 512)
    rest = send(t, 0.1)
    assert "Commit" in kinds(rest)
    with pytest.raises(LinkError) as err:
        t.poll(6.0)
    assert err.value.code == "link.commit_unknown"
