"""Native link throughput at an emulated serial line (8N1: 10 bits per byte; 115200 by default).

    .venv/bin/python bench/bench_link.py [--profile default|small] [--baud N] [--json]

How it is measured: the host (provision.dialects.native) talks to the simulated device
(provision.sim) through the sim:// pair on its *virtual clock*. Every byte on the wire, in
either direction, takes 10 bit times; the device is busy for its profile's processing and
flash latencies (per frame, per programmed byte, commit, bank erase when idle) and bytes that
arrive meanwhile wait in its receive buffer. Elapsed time is bytes on the wire x byte time +
device time + the protocol's turnarounds; nothing is sleeping, nothing is extrapolated.

Figures:
  bulk      a 16 KB credential set (payload bytes) written: goodput / line rate (goal ≥ 0.93)
  p256 set  root CA + client cert + client key (P-256, DER, ~1 KB) written and verified
            (COMMITTED's set digest compared with the bundle's): time / raw DER line time
            (goal ≤ 1.3). Also shown: the same including session open (HELLO) and with an
            extra LIST-based verify.
  ceilings  what the wire format allows (payload bytes / every host byte of the session at
            the line rate, zero turnarounds) and, at a fast line, what the device allows
            (each DATA frame costs the profile's frame_us plus programming its chunk into
            flash, overlapped with the next frame's arrival): the goodput is also shown
            against the lower of the two.
  old dev   the same device without Feature.LEAN (sim `lean=0`): classic BEGIN/DATA frames,
            opened the old way (HELLO answered first) -- the figures before LEAN -- and
            opened pipelined as `device write` now does (its lean first chunk is refused and
            costs its line time).

The host pipelines the session open (HELLO, then the transfer at once in lean frames,
docs/protocol.md §3.1) as `provision device write` does.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from provision.bundle import format as bundle_format
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.device import Device
from provision.dialects.native import NativeSession
from provision.link.chunking import lean_largest, short_tail
from provision.link.host import HOST_LEAN_CHUNK
from provision.sim.serve import open_sim_transport

BAUD = 115200


def p256_set() -> CredentialSet:
    """The P-256 set the benches time (also bench_model_vs_wall's)."""
    from provision.pki.authority import create_root_ca
    from provision.pki.certs import cert_der
    from provision.pki.keys import serialize_private_key

    ca = create_root_ca("Bench Root CA")
    key, cert = ca.issue_client("bench-device-0001")
    return CredentialSet.of(
        [
            Slot(42, SlotType.ROOT_CA, Encoding.DER, cert_der(ca.cert)),
            Slot(42, SlotType.CLIENT_CERT, Encoding.DER, cert_der(cert)),
            Slot(42, SlotType.CLIENT_KEY, Encoding.DER, serialize_private_key(key, encoding="der")),
        ]
    )


def _bulk_set(total: int = 16 * 1024) -> CredentialSet:
    rng = random.Random(16)
    slots = []
    per_tag = total // 4
    sizes = (per_tag * 3 // 8, per_tag * 3 // 8, per_tag - 2 * (per_tag * 3 // 8))
    for tag in (1, 2, 3, 4):
        for slot_type, size in zip(
            (SlotType.ROOT_CA, SlotType.CLIENT_CERT, SlotType.CLIENT_KEY), sizes, strict=True
        ):
            slots.append(Slot(tag, slot_type, Encoding.DER, rng.randbytes(size)))
    return CredentialSet.of(slots)


def _session(profile: str, baud: int, lean: bool, pipeline: bool) -> tuple[NativeSession, object]:
    lean_opt = "" if lean else "&lean=0"
    transport = open_sim_transport(f"sim://native?profile={profile}&baud={baud}{lean_opt}")
    opened_at = transport.now
    s = NativeSession(transport, timeout=2.0, retries=5, pipeline=pipeline)
    return s, (transport, opened_at)


def measure(
    creds: CredentialSet, profile: str, baud: int, *, lean: bool = True, pipeline: bool = True
) -> dict[str, float]:
    s, (transport, opened_at) = _session(profile, baud, lean, pipeline)
    t0 = transport.now
    result = s.write(creds)
    t_write = transport.now - t0
    report = Device(s, "sim://").verify(creds)
    assert report.ok, report
    t_list = transport.now - t0
    payload = sum(len(x.data) for x in creds)
    return {
        "payload_bytes": payload,
        "bundle_bytes": len(bundle_format.encode(creds)),
        "wire_bytes_host_to_device": result.bytes_sent,
        "session_wire_bytes": s.bytes_sent,
        "write_verify_s": t_write,
        "with_hello_s": transport.now - opened_at - (t_list - t_write),
        "with_list_verify_s": t_list,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", help="default: both default and small")
    ap.add_argument("--baud", type=int, help="default: both 115200 and 921600")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sets", type=int, default=5, help="P-256 sets to measure (worst shown)")
    args = ap.parse_args()
    out = []
    for name in [args.profile] if args.profile else ["default", "small"]:
        for baud in [args.baud] if args.baud else [BAUD, 921600]:
            out.append(run(name, baud, args.sets, args.json))
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


def run(profile_name: str, baud: int, sets: int, as_json: bool) -> dict:

    from provision.sim.profile import profile

    line_rate = baud / 10  # bytes per second, 8N1
    prof = profile(profile_name)
    # A profile whose receive buffer cannot take 16 KB gets the largest 4-tag set it can.
    size = min(16 * 1024, (prof.max_bundle - 512) // 1024 * 1024)
    bulk = measure(_bulk_set(size), profile_name, baud)
    bulk_goodput = bulk["payload_bytes"] / bulk["write_verify_s"]
    bulk_ratio = bulk_goodput / line_rate
    # The wire format's ceiling: every byte the host sent in the session, back to back.
    wire_ceiling = bulk["payload_bytes"] / bulk["session_wire_bytes"]
    # The device's ceiling: per DATA frame, handling plus programming its chunk into flash,
    # against the frame's time on the wire (whichever is longer sets the pace). Lean
    # chunks (the sim has LEAN) are the host's, whatever the device's max_payload.
    chunk = short_tail(bulk["bundle_bytes"], lean_largest(10 / baud, HOST_LEAN_CHUNK))
    frame_wire_s = (
        (bulk["wire_bytes_host_to_device"] / -(-bulk["bundle_bytes"] // chunk)) * 10 / baud
    )
    frame_device_s = prof.frame_us / 1e6 + chunk * prof.program_us_per_byte / 1e6
    device_ceiling = wire_ceiling * frame_wire_s / max(frame_wire_s, frame_device_s)
    # Fresh keys and certificates differ by a few bytes (DER integers, signatures): take the
    # worst of several sets.
    runs = [measure(p256_set(), profile_name, baud) for _ in range(sets)]
    ratios = [r["write_verify_s"] / (r["payload_bytes"] / line_rate) for r in runs]
    p256 = runs[ratios.index(max(ratios))]
    raw_line_s = p256["payload_bytes"] / line_rate
    p256_wire_floor = p256["session_wire_bytes"] / line_rate / raw_line_s
    p256_ratio = max(ratios)
    # The same P-256 set and bulk set on a device without LEAN.
    old = {}
    for name, pipelined in (("classic", False), ("pipelined", True)):
        b = measure(_bulk_set(size), profile_name, baud, lean=False, pipeline=pipelined)
        r = measure(p256_set(), profile_name, baud, lean=False, pipeline=pipelined)
        old[name] = {
            "goodput_ratio": b["payload_bytes"] / b["write_verify_s"] / line_rate,
            "p256_ratio_with_hello": r["with_hello_s"] / (r["payload_bytes"] / line_rate),
        }

    figures = {
        "baud": baud,
        "line_rate_Bps": line_rate,
        "profile": profile_name,
        "clock": "virtual (emulated line and device time)",
        "bulk": {
            **bulk,
            "goodput_Bps": bulk_goodput,
            "ratio_to_line": bulk_ratio,
            "wire_format_ceiling": wire_ceiling,
            "device_ceiling": device_ceiling,
            "ratio_to_ceiling": bulk_ratio / min(wire_ceiling, device_ceiling),
            "goal": 0.93,
        },
        "p256": {
            **p256,
            "raw_der_line_s": raw_line_s,
            "ratio": p256_ratio,
            "ratio_mean_of_sets": sum(ratios) / len(ratios),
            "sets": len(ratios),
            "ratio_with_hello": p256["with_hello_s"] / raw_line_s,
            "ratio_with_list_verify": p256["with_list_verify_s"] / raw_line_s,
            "wire_floor_with_hello": p256_wire_floor,
            "goal": 1.3,
        },
        "device_without_lean": old,
    }
    if not as_json:
        print(
            f"native link, emulated {baud} baud 8N1 = {line_rate:.0f} B/s, profile {profile_name}"
        )
        print("measured on the simulator's virtual clock: wire bytes x 10 bit times + device")
        print("processing/flash latency from the profile + protocol turnarounds")
        print(
            f"bulk {bulk['payload_bytes'] // 1024} KB set: {bulk['payload_bytes']} payload bytes "
            "in "
            f"{bulk['write_verify_s'] * 1000:.0f} ms -> {bulk_goodput:.0f} B/s, "
            f"ratio to line rate {bulk_ratio:.3f} (goal >= 0.93) "
            f"{'OK' if bulk_ratio >= 0.93 else 'MISSED'}"
        )
        print(
            f"  ceilings: wire format {wire_ceiling:.3f} (payload / host bytes, no "
            f"turnarounds), device {device_ceiling:.3f} (frame {frame_wire_s * 1e3:.2f} ms on "
            f"the wire vs {frame_device_s * 1e3:.2f} ms handling + programming); "
            f"goodput / lower ceiling {figures['bulk']['ratio_to_ceiling']:.3f}"
        )
        print(
            f"P-256 set, worst of {len(ratios)} ({p256['payload_bytes']} B DER): "
            "written + verified in "
            f"{p256['write_verify_s'] * 1000:.1f} ms vs raw DER line time "
            f"{raw_line_s * 1000:.1f} ms -> ratio {p256_ratio:.3f} (goal <= 1.3) "
            f"{'OK' if p256_ratio <= 1.3 else 'MISSED'} (mean {sum(ratios) / len(ratios):.3f})"
        )
        print(
            f"  including session open (HELLO): {figures['p256']['ratio_with_hello']:.3f} "
            f"(goal <= 1.3; the session's host bytes alone at the line rate: "
            f"{p256_wire_floor:.3f}); with an extra LIST verify: "
            f"{figures['p256']['ratio_with_list_verify']:.3f}"
        )
        c, pl = old["classic"], old["pipelined"]
        print(
            f"device without LEAN (before): goodput {c['goodput_ratio']:.3f}, P-256 incl. "
            f"HELLO {c['p256_ratio_with_hello']:.3f}; opened pipelined as device write does: "
            f"{pl['goodput_ratio']:.3f}, {pl['p256_ratio_with_hello']:.3f}"
        )
    return figures


if __name__ == "__main__":
    sys.exit(main())
