"""Regenerate tests/vectors/esp_secure_cert/*.json from the fixtures (deterministic).

Each file: {"name", "description", "entries": [{"type", "subtype", "flags", "data"}], "hex"}
with `hex` the image as `provision bundle pack --format esp-secure-cert` writes it.
tests/esp32/test_esp_secure_cert_format.py checks both ways; that Espressif's own tool makes
the same bytes from the same files is checked there too, against esp-secure-cert-tool.
"""

from __future__ import annotations

import json
from pathlib import Path

from provision.bundle import esp_secure_cert as esc
from provision.bundle.spec import PackSources, TagSources
from provision.dialects import esp32_image as esp_pack
from provision.packing import read_credentials

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures"


def _vector(name: str, description: str, tag: TagSources, encoding: str) -> dict:
    creds = read_credentials(PackSources(tags=(tag,), encoding=encoding, origin=name))
    entries = esp_pack.entries_for(creds)
    return {
        "name": name,
        "description": description,
        "entries": [
            {"type": e.type, "subtype": e.subtype, "flags": e.flags, "data": e.data.hex()}
            for e in entries
        ],
        "hex": esc.encode(entries).hex(),
    }


def main() -> None:
    out = HERE / "esp_secure_cert"
    out.mkdir(exist_ok=True)
    vectors = [
        _vector(
            "typical",
            "root CA, device cert, P-256 key (PEM, NUL-terminated), integrity entry",
            TagSources(
                sec_tag=1,
                root_ca=(FIX / "root-ca.pem",),
                client_cert=FIX / "device.pem",
                client_key=FIX / "device.key",
            ),
            "pem",
        ),
        _vector(
            "two_cas_der",
            "two CAs as CA_CERT subtypes 0 and 1, DER items, no key",
            TagSources(
                sec_tag=1,
                root_ca=(FIX / "root-ca.pem", FIX / "other-root.pem"),
                client_cert=FIX / "device.pem",
            ),
            "der",
        ),
    ]
    for v in vectors:
        (out / f"{v['name']}.json").write_text(json.dumps(v, indent=1) + "\n")


if __name__ == "__main__":
    main()
