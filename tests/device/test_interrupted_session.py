"""A session the operator cuts short (Ctrl-C) leaves the line clear for the next command:
what it had queued has reached the device and the device's answers have stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import provision.device
from provision.bundle.format import decode

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "bundles"


@pytest.fixture(scope="module")
def bundle() -> bytes:
    return bytes.fromhex(json.loads((VECTORS / "typical.json").read_text())["hex"])


@pytest.mark.parametrize("settles", [True, False], ids=["ctrl-c", "other-error"])
def test_a_native_write_cut_short_by_ctrl_c_waits_for_the_line_to_clear(
    bundle: bytes, settles: bool
) -> None:
    credentials = decode(bundle).credentials
    notices: list[str] = []

    def cut(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt if settles else RuntimeError("not the operator")

    with (
        pytest.raises(KeyboardInterrupt if settles else RuntimeError),
        provision.device.open("sim://native?baud=2400", dialect="native") as dev,
    ):
        dev.notice = notices.append
        runner = dev.session.transport.runner  # type: ignore[attr-defined]
        dev.provision(credentials, bundle=bundle, progress=cut)
    # At 2400 baud a window of DATA frames is seconds of line. Cut by the operator, the host
    # waits them out (and the device's answers); any other failure leaves at once.
    in_flight = runner.next_event_time()
    if settles:
        assert in_flight is None and len(notices) == 1 and "line" in notices[0]
    else:
        assert in_flight is not None and notices == []
