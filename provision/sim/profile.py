"""Device profiles: the limits and timings a simulated device has, so tests meet real constraints.

Timings feed the simulator's time model (provision.sim.serve): the device is busy for them and
bytes that arrive meanwhile wait in a receive buffer of `rx_buffer` bytes (overflow is lost,
as on a UART without flow control).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from provision.errors import InputError


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    max_payload: int = 1024  # largest frame payload accepted (native protocol)
    window: int = 8  # DATA frames in flight
    max_bundle: int = 48 * 1024  # receive buffer for one transfer
    max_slots: int = 32
    max_tags: int = 16
    max_slot_size: int = 16 * 1024
    bank_size: int = 64 * 1024  # each of the two flash banks
    rx_buffer: int = 4096  # UART receive FIFO, bytes
    program_us_per_byte: float = 2.7  # QSPI NOR: 0.7 ms per 256-byte page (W25Q class)
    erase_ms: float = 40.0  # erase of one bank (done while idle, after a commit)
    frame_us: float = 30.0  # handling one frame
    commit_ms: float = 1.0  # bank switch and bookkeeping
    # Device-side crypto, mbedTLS 2.28.3 as the posix stub runs it (bench/bench_mcu_crypto.py):
    # instructions counted under QEMU (-icount) on the profile's core, x the CPI the Cortex-M
    # timing tables give for that instruction mix (bench/mcu_cycles.py), / the chip's clock.
    # Here an nRF52840 (Cortex-M4F, 64 MHz, nRF52840 Product Specification v1.7): 25.8 M
    # instructions each for KEYGEN and for the first verify after boot, CPI 1.70 (1.52-1.88
    # as a taken branch costs 2-4 cycles): 683 and 684 ms; later verifies, which reuse the
    # comb table, 18.7 M (497 ms). Was 150 / 40.
    verify_ms: float = 680.0  # ECDSA P-256 verify of a signed bundle (the first after boot)
    keygen_ms: float = 680.0  # P-256 key generation, CSR built and signed, key as PEM
    boot_ms: float = 50.0  # from power-on until bytes are received again

    def with_options(self, **overrides: Any) -> DeviceProfile:
        return replace(self, **overrides)


PROFILES: dict[str, DeviceProfile] = {
    "default": DeviceProfile("default"),
    # A small MCU like the C stub's targets: short frames, small window, little flash.
    "small": DeviceProfile(
        "small",
        max_payload=256,
        window=4,
        max_bundle=8 * 1024,
        max_slots=12,
        max_tags=4,
        max_slot_size=4096,
        bank_size=16 * 1024,
        rx_buffer=1024,
        program_us_per_byte=10.0,
        erase_ms=85.0,
        # An nRF51822 (Cortex-M0, 16 MHz, nRF51822 Product Specification) running the same
        # mbedTLS code: 44.9 M instructions for KEYGEN, 44.7 M for the first verify (32.4 M
        # later: 3.1 s), CPI 1.55 with the single-cycle multiplier (the 32-cycle one: ~2.6):
        # 4,365 and 4,344 ms. bench/bench_mcu_crypto.py; was 150 / 40 like the default.
        keygen_ms=4400.0,
        verify_ms=4300.0,
    ),
    # An ESP32 module: 4 MB of flat NOR flash (two "banks" of 2 MB), 4 KB sectors erased in
    # some 45 ms each (W25Q32 datasheet, typical); the ROM and stub buffer a whole packet.
    "esp32": DeviceProfile(
        "esp32",
        bank_size=2 * 1024 * 1024,
        rx_buffer=32 * 1024,
        erase_ms=45.0,
        boot_ms=30.0,
    ),
}


def profile(name: str) -> DeviceProfile:
    try:
        return PROFILES[name]
    except KeyError:
        valid = ", ".join(PROFILES)
        raise InputError(f"unknown device profile {name!r} (valid: {valid})") from None
