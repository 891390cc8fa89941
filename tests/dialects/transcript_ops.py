"""The operations recorded in tests/vectors/transcripts/*.jsonl, and how to replay them.

A transcript is JSON lines: a header {"transcript", "dialect", "sim": {options}, "ops": [...],
"source"}, then one {"send": str, "recv": str} per write the driver made (latin-1 text with
\\r\\n escaped by JSON) and, first, {"boot": str} with what the device printed at power-on.

Regenerate (after a deliberate change, reviewed in the diff):
    PROVISION_RECORD_TRANSCRIPTS=1 .venv/bin/pytest tests/dialects/test_transcripts.py
"""

from __future__ import annotations

import json
from pathlib import Path

from dialect_helpers import AnswerQueue

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.dialects.at_cmng import AtCmngSession
from provision.dialects.at_shell import AtShellSession
from provision.dialects.zephyr_shell import ZephyrShellSession
from provision.sim.at_cmng import AtCmngModem, AtCmngOptions
from provision.sim.at_shell import AtShellDevice, AtShellOptions
from provision.sim.zephyr_shell import ZephyrShellDevice, ZephyrShellOptions

DIR = Path(__file__).resolve().parents[1] / "vectors" / "transcripts"


# Synthetic PEM text: neither dialect parses certificates on the wire, so fixed bytes keep
# the transcripts deterministic (no key material, no dates).
def fake_pem(label: str, seed: str, lines: int) -> bytes:
    import base64
    import hashlib

    body = b"".join(hashlib.sha256(f"{seed}{i}".encode()).digest() for i in range(lines))
    b64 = base64.b64encode(body)
    rows = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        f"-----BEGIN {label}-----\n".encode()
        + b"\n".join(rows)
        + f"\n-----END {label}-----\n".encode()
    )


ROOT = fake_pem("CERTIFICATE", "root", 9)
CERT = fake_pem("CERTIFICATE", "cert", 10)
KEY = fake_pem("PRIVATE KEY", "key", 3)
ENC_KEY = fake_pem("ENCRYPTED PRIVATE KEY", "enc", 5)

SETS = {
    "device": CredentialSet.of(
        [
            Slot(42, SlotType.ROOT_CA, Encoding.PEM, ROOT),
            Slot(42, SlotType.CLIENT_CERT, Encoding.PEM, CERT),
            Slot(42, SlotType.CLIENT_KEY, Encoding.PEM, KEY),
        ]
    ),
    "psk": CredentialSet.of(
        [
            Slot(3, SlotType.PSK, Encoding.RAW, bytes(range(16))),
            Slot(3, SlotType.PSK_IDENTITY, Encoding.RAW, b"client-3"),
        ]
    ),
    "encrypted": CredentialSet.of(
        [
            Slot(7, SlotType.CLIENT_KEY, Encoding.PEM, ENC_KEY, SlotFlags.ENCRYPTED),
            Slot(7, SlotType.KEY_PASSWORD, Encoding.RAW, b"pass-7"),
        ]
    ),
}


def make_device(dialect: str, sim: dict):
    if dialect == "at-cmng":
        return AtCmngModem(options=AtCmngOptions(**sim))
    if dialect == "at-shell":
        # Options prefixed "modem_" go to the modem behind the shell.
        shell = {k: v for k, v in sim.items() if not k.startswith("modem_")}
        modem = {k[6:]: v for k, v in sim.items() if k.startswith("modem_")}
        return AtShellDevice(options=AtShellOptions(**shell), modem_options=AtCmngOptions(**modem))
    return ZephyrShellDevice(options=ZephyrShellOptions(**sim))


def make_session(dialect: str, transport):
    classes = {"at-cmng": AtCmngSession, "at-shell": AtShellSession}
    cls = classes.get(dialect, ZephyrShellSession)
    return cls(transport, timeout=0.05, retries=0)


def run_ops(session, ops: list[list]) -> list[object]:
    """Run [name, *args] operations; return what each gave (or the error's class and text)."""
    results: list[object] = []
    for name, *args in ops:
        try:
            if name == "write":
                results.append(
                    [[s.sec_tag, s.type.label] for s in session.write(SETS[args[0]]).written]
                )
            elif name == "list":
                results.append([[s.sec_tag, s.type.label, s.sha256.hex()] for s in session.list()])
            elif name == "read":
                results.append(session.read(args[0], SlotType.parse(args[1])).decode("latin-1"))
            elif name == "delete":
                slot = SlotType.parse(args[1]) if len(args) > 1 and args[1] else None
                session.delete(args[0], slot)
                results.append(None)
            elif name == "info":
                info = session.info()
                results.append([info.device_id, info.firmware])
            else:
                raise ValueError(name)
        except Exception as err:  # recorded: the error is part of the exchange
            results.append([type(err).__name__, str(err)])
    return results


class RecordingTransport(AnswerQueue):
    """Back-to-back with a sans-IO device; remembers every write and its answer."""

    def __init__(self, device) -> None:
        self.device = device
        self.boot = device.boot()
        self.pending = bytearray(self.boot)
        self.exchanges: list[tuple[bytes, bytes]] = []

    def write(self, data: bytes) -> None:
        reply = self.device.receive_data(data)
        self.exchanges.append((bytes(data), reply))
        self.pending += reply


class ScriptedTransport(AnswerQueue):
    """Plays the device side of a transcript: each write must be the recorded one."""

    def __init__(self, boot: bytes, exchanges: list[tuple[bytes, bytes]]) -> None:
        self.pending = bytearray(boot)
        self.script = list(exchanges)
        self.position = 0

    def write(self, data: bytes) -> None:
        assert self.position < len(self.script), f"unexpected extra write {data[:40]!r}"
        sent, reply = self.script[self.position]
        assert data == sent, f"exchange {self.position}: sent {data[:60]!r}, recorded {sent[:60]!r}"
        self.position += 1
        self.pending += reply


def load(path: Path) -> tuple[dict, bytes, list[tuple[bytes, bytes]]]:
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    header, rest = lines[0], lines[1:]
    boot = rest[0]["boot"].encode("latin-1") if rest and "boot" in rest[0] else b""
    exchanges = [
        (x["send"].encode("latin-1"), x["recv"].encode("latin-1")) for x in rest if "send" in x
    ]
    return header, boot, exchanges


def record(name: str, dialect: str, sim: dict, ops: list[list], source: str) -> Path:
    transport = RecordingTransport(make_device(dialect, sim))
    session = make_session(dialect, transport)
    results = run_ops(session, ops)
    header = {
        "transcript": name,
        "dialect": dialect,
        "sim": sim,
        "ops": ops,
        "results": results,
        "source": source,
    }
    path = DIR / f"{name}.jsonl"
    with path.open("w") as f:
        f.write(json.dumps(header) + "\n")
        f.write(json.dumps({"boot": transport.boot.decode("latin-1")}) + "\n")
        for sent, reply in transport.exchanges:
            f.write(
                json.dumps({"send": sent.decode("latin-1"), "recv": reply.decode("latin-1")}) + "\n"
            )
    return path
