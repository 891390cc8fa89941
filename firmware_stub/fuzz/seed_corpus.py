"""Seed corpus for fuzz_stub from the vectors file gen_vectors.py writes.

    python seed_corpus.py VECTORS.txt OUTDIR

Each golden frame becomes a mode-0 seed (its wire bytes) and a mode-1 seed (type, length,
payload); each bundle becomes a mode-2 and a mode-3 seed. See fuzz_stub.c for the modes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cobs import cobs


def main() -> None:
    vectors, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    session = bytearray([1])
    count = 0
    for line in vectors.read_text().splitlines():
        tok = line.split()
        if len(tok) < 3:
            continue
        if tok[0] == "frame":
            wire = bytes.fromhex(tok[3])
            raw = cobs.decode(wire[:-1])[:-4]
            kind, payload = raw[1], raw[6:]
            (out / f"frame-{count}").write_bytes(b"\x00" + wire)
            if kind < 0x80 and len(payload) < 256:
                record = bytes([kind, len(payload)]) + payload
                (out / f"request-{count}").write_bytes(b"\x01" + record)
                session += record
            count += 1
        elif tok[0] == "bundle" and tok[2] != "-":
            data = bytes.fromhex(tok[2])
            if len(data) > 4096 and tok[3] != "ok":
                continue
            (out / f"bundle-{count}").write_bytes(b"\x02" + data)
            (out / f"transfer-{count}").write_bytes(b"\x03" + data)
            count += 1
    (out / "session").write_bytes(bytes(session))
    print(f"seed corpus: {count * 2 + 1} files in {out}")


if __name__ == "__main__":
    main()
