"""Property: whatever frames arrive (valid CRC, arbitrary type and payload), the device never
raises, answers every frame with frames the host can parse, and keeps a consistent store."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from simkit import make_set, make_store

from provision.link import framing
from provision.link import messages as m
from provision.link.host import HostLink
from provision.sim.native import NativeDevice
from provision.sim.serve import SimContext

OLD = make_set(random.Random(3), (1,))

frame_bodies = st.builds(
    lambda version, type_, seq, payload, lie: (
        bytes([version, type_])
        + seq.to_bytes(2, "little")
        + max(0, len(payload) + lie).to_bytes(2, "little")
        + payload
    ),
    st.sampled_from([1, 1, 1, 0, 2]),
    st.one_of(st.sampled_from(sorted(m.REQUESTS)), st.integers(0, 255)),
    st.integers(0, 0xFFFF),
    st.binary(max_size=80),
    st.sampled_from([0, 0, 0, 1, -1]),  # a header length that lies now and then
)

# DATA_LEAN has a body of its own (type byte, transfer_id, index, chunk; no header).
lean_bodies = st.builds(
    lambda transfer_id, index, chunk: (
        bytes([m.MsgType.DATA_LEAN])
        + transfer_id.to_bytes(2, "little")
        + index.to_bytes(2, "little")
        + chunk
    ),
    st.sampled_from([0, 7, 0xFFFF]),
    st.integers(0, 3),
    st.binary(max_size=80),
)
# A lean transfer some DATA_LEAN frames can land in.
lean_begins = st.builds(
    lambda size, chunk, seq: m.encode(m.BeginLean(7, size, chunk, bytes(4)), seq),
    st.integers(1, 300),
    st.integers(1, 120),
    st.integers(1, 0xFFFF),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(frame_bodies, lean_bodies, lean_begins, st.binary(max_size=30)), max_size=12)
)
def test_device_answers_any_frames_without_raising(bodies: list[bytes]) -> None:
    store = make_store(OLD)
    device = NativeDevice(SimContext("native", store, store.profile, {"keygen": "0"}))
    host = HostLink()
    framed = (0, 1, 2, m.MsgType.DATA_LEAN)
    wire = b"".join(framing.pack(b) if b and b[0] in framed else b + b"\x00" for b in bodies)
    out = device.receive_data(wire)
    assert host.receive_data(out) or not out
    assert host.bad_frames == 0  # everything the device says is a valid frame
    store.mount()
    entries = store.entries()
    # Random frames can delete (a valid DELETE), never write half a set.
    assert set(entries.items()) <= {(s.key, s.data) for s in OLD}
