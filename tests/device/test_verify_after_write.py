"""The verify after a write reads the device's digests again before a mismatch stands: a
text link has no checksum, and one garbled listing must not fail a good write. A mismatch
that stays is VerifyFailed (exit 2, device.verify_failed)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.device import VERIFY_READS, Device
from provision.dialects.at_cmng import PROFILE
from provision.dialects.base import SlotInfo, WriteResult
from provision.errors import VerifyFailed

SET = CredentialSet.of([Slot(3, SlotType.PSK_IDENTITY, Encoding.RAW, b"device-3")])


class ListsWrongly:
    """A session whose first `bad` listings report a garbled digest."""

    name = "at-cmng"
    profile = PROFILE
    capabilities = PROFILE.capabilities
    bytes_sent = 0

    def __init__(self, bad: int) -> None:
        self.bad = bad
        self.listings = 0  # after the write (the job lists before it too, for its report)
        self.written = False

    def write(self, credentials, progress=None, *, held=None) -> WriteResult:
        self.written = True
        return WriteResult((), 0, 0.0)

    def list(self) -> list[SlotInfo]:
        if not self.written:
            return []
        self.listings += 1
        digest = hashlib.sha256(b"device-3").digest()
        if self.listings <= self.bad:
            digest = bytes([digest[0] ^ 1]) + digest[1:]
        return [SlotInfo(3, SlotType.PSK_IDENTITY, None, digest)]


def test_one_garbled_listing_does_not_fail_a_good_write() -> None:
    session = ListsWrongly(bad=1)
    report = Device(session, "loop").provision(SET)  # type: ignore[arg-type]
    assert report.verified and session.listings == 2


def test_a_mismatch_that_stays_is_verify_failed() -> None:
    session = ListsWrongly(bad=VERIFY_READS)
    with pytest.raises(VerifyFailed) as failed:
        Device(session, "loop").provision(SET)  # type: ignore[arg-type]
    # Two listings more after the failure, which agree: the error says what the device holds.
    assert failed.value.code == "device.verify_failed" and session.listings == VERIFY_READS + 2
    assert "the device holds the whole new set" in failed.value.message


def test_a_write_the_device_confirmed_is_not_listed_again() -> None:
    session = ListsWrongly(bad=VERIFY_READS)
    session.write = lambda credentials, progress=None, held=None: dataclasses.replace(  # type: ignore[method-assign]
        WriteResult((), 0, 0.0), confirmed=True
    )
    assert Device(session, "loop").provision(SET).verified  # type: ignore[arg-type]
    assert session.listings == 0


def test_two_listings_garbled_alike_do_not_make_a_digest_nobody_wrote_the_report() -> None:
    # The verify fails (every listing garbled); the report's first two listings are
    # garbled alike: they agree on a digest of neither the old nor the new content, which
    # takes a third agreeing listing to be believed.
    session = ListsWrongly(bad=VERIFY_READS + 2)
    with pytest.raises(VerifyFailed) as failed:
        Device(session, "loop").provision(SET)  # type: ignore[arg-type]
    assert "the device holds the whole new set" in failed.value.message
    assert session.listings == VERIFY_READS + 4
