"""A native write tells the truth about the device after a cut near COMMIT: COMMITTED with
the set's digest is success even if the device is gone right after; COMMIT sent and not
answered is 'old set or new set, whole' (link.commit_unknown), never a plain failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import provision.device
from provision.bundle.format import decode
from provision.errors import LinkError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "bundles"


@pytest.fixture(scope="module")
def bundle() -> bytes:
    return bytes.fromhex(json.loads((VECTORS / "typical.json").read_text())["hex"])


def _bytes_through_commit(bundle: bytes) -> int:
    credentials = decode(bundle).credentials
    with provision.device.open("sim://native", dialect="native") as dev:
        dev.provision(credentials, bundle=bundle)
        return dev.session.bytes_sent


def test_a_device_that_goes_silent_right_after_committed_was_written(bundle: bytes) -> None:
    n = _bytes_through_commit(bundle)
    url = f"sim://native?silent_after={n}"
    with provision.device.open(url, dialect="native", timeout=0.5, retries=1) as dev:
        report = dev.provision(decode(bundle).credentials, bundle=bundle)
    assert report.verified


def test_commit_without_an_answer_says_the_outcome_is_one_set_or_the_other(
    bundle: bytes, tmp_path: Path
) -> None:
    n = _bytes_through_commit(bundle)
    flash = tmp_path / "dev.flash"
    url = f"sim://native?silent_after={n - 8}&flash={flash}"
    with (
        provision.device.open(url, dialect="native", timeout=0.5, retries=1) as dev,
        pytest.raises(LinkError) as lost,
    ):
        dev.provision(decode(bundle).credentials, bundle=bundle)
    assert lost.value.code == "link.commit_unknown"
    assert "old set or the new one, whole" in lost.value.message
    # And it is one or the other: here the COMMIT never arrived whole, so the old (empty).
    with provision.device.open(f"sim://native?flash={flash}", dialect="native") as dev:
        assert dev.list() == []
