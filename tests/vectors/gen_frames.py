"""Regenerate tests/vectors/frames.jsonl: one golden frame per message type (and a few more).

    .venv/bin/python tests/vectors/gen_frames.py

Run only when the protocol version changes: the file is a lock that Python and C tests read.
Each line: {"message": NAME, "seq": N, "fields": {...}, "hex": wire bytes incl. the 0x00}.
Field values are deterministic (no randomness), so rerunning gives the same file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from provision.link import framing
from provision.link import messages as m

OUT = Path(__file__).with_name("frames.jsonl")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


CASES: list[tuple[int, m.Message]] = [
    (1, m.Hello(version=1, max_payload=512)),
    (
        1,
        m.HelloInfo(
            version=1,
            max_payload=512,
            window=8,
            max_bundle=49152,
            max_slots=32,
            max_tags=16,
            max_slot_size=16384,
            features=int(m.Feature.KEYGEN | m.Feature.RESUME | m.Feature.READ),
            uid=bytes.fromhex("0102030405060708"),
            firmware="provision-sim 1",
        ),
    ),
    # A device that can switch its line rate ends HELLO_INFO with the rates (Feature.BAUD).
    (
        1,
        m.HelloInfo(
            version=1,
            max_payload=256,
            window=4,
            max_bundle=8192,
            max_slots=12,
            max_tags=4,
            max_slot_size=4096,
            features=int(m.Feature.RESUME | m.Feature.READ | m.Feature.BAUD),
            uid=bytes.fromhex("0102030405060708"),
            firmware="provision-stub 1",
            rates=(115200, 230400, 460800, 921600),
        ),
    ),
    (14, m.ChangeBaud(baud=921600)),
    (14, m.Ok(request=int(m.MsgType.CHANGE_BAUD))),
    (2, m.Begin(transfer_id=7, total_size=1130, chunk_size=506, sha256=_digest("bundle"))),
    (3, m.Data(transfer_id=7, offset=0, chunk=bytes(range(16)))),
    (4, m.Data(transfer_id=7, offset=506, chunk=b"\x00\x00\x00\x01")),
    (5, m.Commit(transfer_id=7)),
    (6, m.ListSlots(start=0)),
    (7, m.Read(sec_tag=42, slot=0, offset=0, max_len=480)),
    (8, m.Delete(scope=int(m.DeleteScope.SLOT), sec_tag=42, slot=1, guard=0)),
    (9, m.Delete(scope=int(m.DeleteScope.TAG), sec_tag=42, slot=0, guard=0)),
    (10, m.Delete(scope=int(m.DeleteScope.ALL), sec_tag=0, slot=0, guard=m.DELETE_ALL_GUARD)),
    (11, m.Keygen(sec_tag=42, offset=0, subject="device-0001")),
    (12, m.Reset()),
    (12, m.Ok(request=int(m.MsgType.RESET))),
    (2, m.Ack(transfer_id=7, cumulative=0, sack=0)),
    (4, m.Ack(transfer_id=7, cumulative=506, sack=0b101)),
    (0, m.Nak(transfer_id=7, offset=506, reason=int(m.NakReason.BAD_FRAME))),
    (4, m.Nak(transfer_id=7, offset=506, reason=int(m.NakReason.OUT_OF_WINDOW))),
    (5, m.Committed(transfer_id=7, slot_count=3, set_digest=_digest("set"))),
    (
        6,
        m.ListPage(
            total=2,
            start=0,
            entries=(
                m.Entry(sec_tag=42, slot=0, size=420, sha256=_digest("root")),
                m.Entry(sec_tag=42, slot=2, size=138, sha256=_digest("key")),
            ),
        ),
    ),
    (6, m.ListPage(total=0, start=0, entries=())),
    (7, m.ReadData(sec_tag=42, slot=0, total=420, offset=0, data=b"0\x82\x01\xa0")),
    (11, m.Csr(sec_tag=42, total=4, offset=0, data=b"0\x82\x01\x00")),
    (13, m.TlsCheck(sec_tag=42, port=8443, tls=13, timeout_ms=5000, host="localhost")),
    (
        13,
        m.TlsResult(
            sec_tag=42,
            failure=0,
            server_verified=1,
            client_accepted=1,
            version="TLSv1.3",
            cipher="TLS_AES_256_GCM_SHA384",
            accepted_as="CN=device-0001",
            evidence="the server greeted us with our subject",
            detail="",
            chain=("CN=localhost", "CN=Provision Root"),
        ),
    ),
    (
        13,
        m.TlsResult(
            sec_tag=42,
            failure=1,
            server_verified=0,
            client_accepted=2,
            version="",
            cipher="",
            accepted_as="",
            evidence="",
            detail="our root_ca does not anchor the server's chain",
            chain=(),
        ),
    ),
    (5, m.Error(code=int(m.ErrorCode.INCOMPLETE), request=int(m.MsgType.COMMIT), detail="")),
    (
        5,
        m.Error(
            code=int(m.ErrorCode.DIGEST_MISMATCH),
            request=int(m.MsgType.COMMIT),
            detail="bundle digest differs",
        ),
    ),
    # Feature.LEAN (appended: the vectors above are unchanged). A HELLO_INFO announcing it,
    # the lean BEGIN, a DATA_LEAN frame (its own body: no header, no seq) and the answer
    # to one with no transfer, which comes with seq 0.
    (
        1,
        m.HelloInfo(
            version=1,
            max_payload=256,
            window=4,
            max_bundle=8192,
            max_slots=12,
            max_tags=4,
            max_slot_size=4096,
            features=int(m.Feature.RESUME | m.Feature.READ | m.Feature.LEAN),
            uid=bytes.fromhex("0102030405060708"),
            firmware="provision-stub 1",
        ),
    ),
    (
        2,
        m.BeginLean(transfer_id=7, total_size=1130, chunk_size=904, digest=_digest("bundle")[:4]),
    ),
    (0, m.DataLean(transfer_id=7, index=1, chunk=bytes(range(1, 200)) + b"\x00" + bytes(26))),
    (
        0,
        m.Error(
            code=int(m.ErrorCode.NO_TRANSFER),
            request=int(m.MsgType.DATA_LEAN),
            detail="no lean transfer 7",
        ),
    ),
]


def lines() -> list[str]:
    out = []
    for seq, msg in CASES:
        wire = framing.pack(m.encode(msg, seq))
        record = {"message": msg.TYPE.name, "seq": seq, "fields": msg.fields(), "hex": wire.hex()}
        out.append(json.dumps(record, sort_keys=True))
    return out


if __name__ == "__main__":
    OUT.write_text("\n".join(lines()) + "\n")
    print(f"wrote {len(CASES)} vectors to {OUT}")
