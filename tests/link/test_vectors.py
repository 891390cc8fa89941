"""Golden frame vectors: build → hex and hex → fields, both ways, for every message type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.link import framing
from provision.link import messages as m

VECTORS = Path(__file__).parents[1] / "vectors" / "frames.jsonl"
RECORDS = [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]


def test_every_message_type_has_a_vector() -> None:
    assert {r["message"] for r in RECORDS} == {t.name for t in m.MsgType}


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: f"{r['message']}-{r['seq']}")
def test_build_gives_golden_hex(record: dict) -> None:
    msg = m.from_fields(record["message"], record["fields"])
    assert framing.pack(m.encode(msg, record["seq"])).hex() == record["hex"]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: f"{r['message']}-{r['seq']}")
def test_parse_gives_golden_fields(record: dict) -> None:
    wire = bytes.fromhex(record["hex"])
    (body,) = framing.FrameDecoder(m.HEADER_SIZE + m.MAX_PAYLOAD).feed(wire)
    frame = m.decode(body)
    assert frame.message.TYPE.name == record["message"]
    assert frame.seq == record["seq"]
    assert frame.message.fields() == record["fields"]
    # Rebuilding what was parsed gives the same bytes (no lossy fields).
    assert framing.pack(m.encode(frame.message, frame.seq)) == wire


def test_generator_reproduces_the_file() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_frames", VECTORS.with_name("gen_frames.py"))
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.lines() == VECTORS.read_text().splitlines()
