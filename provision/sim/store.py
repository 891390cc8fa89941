"""Simulated flash and a slot store with atomic commit (A/B banks). Used by every simulator.

    flash = Flash(2 * profile.bank_size, path="dev.flash")   # or path=None: in memory
    store = SlotStore(flash, profile)
    store.entries()                                  # {(sec_tag, slot type): bytes}
    store.commit({(42, SlotType.ROOT_CA): der, (42, SlotType.PSK): None})   # None deletes

Layout: two banks of `bank_size` bytes. A bank is

    magic "PSB1" | sequence u32 | length u32 | crc32 u32 | image (length bytes)
    image = count u16 | count * (sec_tag u32 | slot u8 | size u32 | bytes)

all little-endian. `commit` writes the complete new image into the inactive bank — image
first, header last — and only then is it the newest valid bank. At mount the valid bank
(magic, CRC) with the higher sequence wins. So a power cut at any flash byte leaves the old
store or the new one, never a mix.

Power cuts: `flash.cut_power_after(n)` makes the n+1-th programmed byte raise PowerCut (the
bytes before it are on flash). The simulator runner then drops the device object (RAM) and
boots a new one over the same Flash.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from provision.bundle.model import SlotType
from provision.errors import InputError, PolicyError
from provision.inputs import read_input
from provision.pki.files import open_private
from provision.sim.profile import DeviceProfile

Key = tuple[int, int]  # (sec_tag, slot type); SlotType where the number is one


def _slot(value: int) -> int:
    # Other dialects' simulators store types the bundle has no name for (AT%CMNG 5..11).
    try:
        return SlotType(value)
    except ValueError:
        return int(value)


def _label(value: int) -> str:
    return value.label if isinstance(value, SlotType) else f"type {value}"


MAGIC = b"PSB1"
_HEADER = struct.Struct("<4sIII")
_ENTRY = struct.Struct("<IBI")


class PowerCut(Exception):
    """Raised from inside a flash operation when an injected power cut hits."""


class StoreFull(Exception):
    """A commit would exceed the device's limits; the store is unchanged. str() says which."""


class Flash:
    """NOR-like flash: erase sets 0xFF, program writes bytes. Optionally backed by a file.

    Counts programmed bytes and the simulated time spent, which the device turns into busy
    time (`take_busy`)."""

    def __init__(
        self,
        size: int,
        path: str | os.PathLike[str] | None = None,
        *,
        program_us_per_byte: float = 0.0,
        erase_ms: float = 0.0,
    ) -> None:
        self.size = size
        self.path = Path(path) if path is not None else None
        self.program_s = program_us_per_byte / 1e6
        self.erase_s = erase_ms / 1e3
        self.programmed = 0
        self.operations = 0  # erases and programs: the runner sees whether a call used flash
        self._busy = 0.0
        self._cut_after: int | None = None
        try:
            if self.path is not None and self.path.exists():
                # The one input reader: `flash=/dev/zero` was read until memory ran out.
                try:
                    data = read_input(self.path, "flash", limit=size)
                except PolicyError:
                    data = b"\0" * (size + 1)  # too large: the message below says so
                if len(data) != size:
                    shown = len(data) if len(data) <= size else f"over {size}"
                    raise InputError(
                        f"{self.path}: flash file is {shown} bytes, the profile needs {size}"
                    )
                self._mem = bytearray(data)
                self._blank = False
            else:
                # Repeating one byte: no 4 MB intermediate for each simulated board.
                self._mem = bytearray(b"\xff") * size
                self._blank = True  # until the first program: a new board's flash
                if self.path is not None:
                    self._persist(0, len(self._mem))
        except OSError as err:  # a folder, a missing parent folder, no permission
            raise InputError(f"{self.path}: cannot use as flash file: {err.strerror}") from None

    def cut_power_after(self, n: int | None) -> None:
        """Arm (n programmed bytes from now) or disarm (None) a power cut."""
        self._cut_after = None if n is None else self.programmed + n

    def take_busy(self) -> float:
        busy, self._busy = self._busy, 0.0
        return busy

    def read(self, offset: int, n: int) -> bytes:
        return bytes(self._mem[offset : offset + n])

    def is_erased(self, offset: int, n: int) -> bool:
        """All 0xFF (counted in place: no copy of a 2 MB bank for every simulated board)."""
        return self._blank or self._mem.count(0xFF, offset, offset + n) == n

    def erase(self, offset: int, n: int) -> None:
        self._mem[offset : offset + n] = b"\xff" * n
        self.operations += 1
        self._busy += self.erase_s
        self._persist(offset, n)

    def program(self, offset: int, data: bytes) -> None:
        n = len(data)
        cut_after = self._cut_after
        cut = cut_after is not None and self.programmed + n >= cut_after
        if cut_after is not None and cut:
            n = max(0, cut_after - self.programmed)
        # NOR programming can only clear bits: AND, done on whole integers (not byte by byte).
        if n:
            self._blank = False
            old = int.from_bytes(self._mem[offset : offset + n], "little")
            new = old & int.from_bytes(data[:n], "little")
            self._mem[offset : offset + n] = new.to_bytes(n, "little")
        self.programmed += n
        self.operations += 1
        self._busy += n * self.program_s
        self._persist(offset, n)
        if cut:
            self._cut_after = None
            raise PowerCut(f"power cut after {self.programmed} flash bytes")

    def _persist(self, offset: int, n: int) -> None:
        if self.path is None or n == 0:
            return
        if not self.path.exists():
            # The flash holds plaintext keys, as a device's does: 0600 whatever the umask.
            with os.fdopen(open_private(self.path, os.O_WRONLY), "wb") as f:
                f.write(self._mem)
            return
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(self._mem[offset : offset + n])


def encode_image(entries: Mapping[Key, bytes]) -> bytes:
    out = [struct.pack("<H", len(entries))]
    for (sec_tag, slot), data in sorted(entries.items()):
        out.append(_ENTRY.pack(sec_tag, int(slot), len(data)))
        out.append(data)
    return b"".join(out)


def decode_image(image: bytes) -> dict[Key, bytes]:
    (count,) = struct.unpack_from("<H", image, 0)
    pos = 2
    entries: dict[Key, bytes] = {}
    for _ in range(count):
        sec_tag, slot, size = _ENTRY.unpack_from(image, pos)
        pos += _ENTRY.size
        entries[(sec_tag, _slot(slot))] = image[pos : pos + size]
        pos += size
    return entries


@dataclass
class _Staging:
    end: int  # next free flash offset in the spare bank
    entries: dict[Key, tuple[int, int]] = field(default_factory=dict)  # key -> (offset, size)


class SlotStore:
    """Credential slots on a Flash, committed atomically. Limits come from a DeviceProfile."""

    def __init__(self, flash: Flash, profile: DeviceProfile) -> None:
        if flash.size < 2 * profile.bank_size:
            raise InputError("flash smaller than two banks of the profile")
        self.flash = flash
        self.profile = profile
        self.bank_size = profile.bank_size
        self.capacity = self.bank_size - _HEADER.size
        self.mount()

    def mount(self) -> None:
        """(Re)read the banks, as a device does at boot."""
        best: tuple[int, int, dict[Key, bytes]] | None = None
        self._entries: dict[Key, bytes]
        for bank in (0, 1):
            parsed = self._read_bank(bank)
            if parsed is not None and (best is None or parsed[0] > best[0]):
                best = (parsed[0], bank, parsed[1])
        if best is None:
            self.sequence, self.active, self._entries = 0, 1, {}
        else:
            self.sequence, self.active, self._entries = best
        # A blank spare bank (a new board's flash) needs no erase: firmware blank-checks it.
        spare = (1 - self.active) * self.bank_size
        self._spare_erased = self.flash.is_erased(spare, self.bank_size)
        self._staged: _Staging | None = None

    def _read_bank(self, bank: int) -> tuple[int, dict[Key, bytes]] | None:
        base = bank * self.bank_size
        magic, seq, length, crc = _HEADER.unpack(self.flash.read(base, _HEADER.size))
        if magic != MAGIC or length > self.capacity:
            return None
        image = self.flash.read(base + _HEADER.size, length)
        if zlib.crc32(image) != crc:
            return None
        try:
            return seq, decode_image(image)
        except (struct.error, ValueError):
            return None

    def entries(self) -> dict[Key, bytes]:
        return dict(self._entries)

    def check_limits(self, entries: Mapping[Key, bytes]) -> None:
        """Raise StoreFull if `entries` would not fit this device."""
        p = self.profile
        for (sec_tag, slot), data in entries.items():
            if len(data) > p.max_slot_size:
                raise StoreFull(
                    f"sec_tag {sec_tag} {_label(slot)} is {len(data)} bytes "
                    f"(slot limit {p.max_slot_size})"
                )
        if len(entries) > p.max_slots:
            raise StoreFull(f"{len(entries)} slots (device holds {p.max_slots})")
        tags = {k[0] for k in entries}
        if len(tags) > p.max_tags:
            raise StoreFull(f"{len(tags)} sec_tags (device holds {p.max_tags})")
        size = len(encode_image(entries))
        if size > self.capacity:
            raise StoreFull(f"store image of {size} bytes (flash bank holds {self.capacity})")

    def commit(self, changes: Mapping[Key, bytes | None]) -> None:
        """Apply all `changes` at once (None deletes). Raises StoreFull (nothing changed) or
        PowerCut (flash holds the old or the new store; call mount() after a reboot)."""
        new = dict(self._entries)
        for key, data in changes.items():
            key = (key[0], _slot(key[1]))
            if data is None:
                new.pop(key, None)
            else:
                new[key] = bytes(data)
        self.replace(new)

    def replace(self, entries: Mapping[Key, bytes]) -> None:
        self.check_limits(entries)
        target = 1 - self.active
        base = target * self.bank_size
        staged, self._staged = self._staged, None
        if staged is not None and self._stage_matches(staged, entries):
            # The transfer's entries are on flash already: add the kept ones and the count.
            pos = staged.end
            for key, data in sorted(entries.items()):
                if key not in staged.entries:
                    entry = _ENTRY.pack(key[0], int(key[1]), len(data)) + data
                    self.flash.program(pos, entry)
                    pos += len(entry)
            self.flash.program(base + _HEADER.size, struct.pack("<H", len(entries)))
            image = self.flash.read(base + _HEADER.size, pos - base - _HEADER.size)
        else:
            image = encode_image(entries)
            if not self._spare_erased:
                self.flash.erase(base, self.bank_size)
            self.flash.program(base + _HEADER.size, image)
        self._spare_erased = False
        seq = self.sequence + 1
        self.flash.program(base, _HEADER.pack(MAGIC, seq, len(image), zlib.crc32(image)))
        self.sequence, self.active, self._entries = seq, target, dict(entries)

    # -- staging: a transfer's entries programmed into the spare bank while they arrive, so
    # that a commit programs only what the store keeps and the header. The image layout is
    # the same (decode_image does not need the entries sorted).
    def stage_start(self) -> None:
        """Begin staging a new image in the spare bank (erased first unless it is blank)."""
        self._staged = None
        self.erase_spare()
        self._spare_erased = False  # being written from here on
        base = (1 - self.active) * self.bank_size
        self._staged = _Staging(base + _HEADER.size + 2)

    def stage_entry(self, key: Key, size: int) -> int | None:
        """Program an entry's header; return where its data goes (None: not staging, or it
        would not fit the bank, so the commit writes everything itself)."""
        st = self._staged
        if st is None or key in st.entries:
            return None
        base = (1 - self.active) * self.bank_size
        if st.end + _ENTRY.size + size > base + self.bank_size:
            self._staged = None
            return None
        self.flash.program(st.end, _ENTRY.pack(key[0], int(key[1]), size))
        st.entries[key] = (st.end + _ENTRY.size, size)
        st.end += _ENTRY.size + size
        return st.end - size

    def stage_data(self, offset: int, data: bytes) -> None:
        if self._staged is not None:
            self.flash.program(offset, data)

    def _stage_matches(self, staged: _Staging, entries: Mapping[Key, bytes]) -> bool:
        return all(
            key in entries and self.flash.read(pos, size) == entries[key]
            for key, (pos, size) in staged.entries.items()
        )

    def erase_spare(self) -> None:
        """Erase the inactive bank ahead of the next commit (a device does this when idle,
        not while a transfer is being staged there)."""
        if not self._spare_erased and self._staged is None:
            self.flash.erase((1 - self.active) * self.bank_size, self.bank_size)
            self._spare_erased = True


def open_store(profile: DeviceProfile, path: str | os.PathLike[str] | None = None) -> SlotStore:
    flash = Flash(
        2 * profile.bank_size,
        path,
        program_us_per_byte=profile.program_us_per_byte,
        erase_ms=profile.erase_ms,
    )
    return SlotStore(flash, profile)
