"""The device registry: hash-chained records, serial allocation and device claims.

    reg = open_registry("line.sqlite")            # or "postgresql://user@host/db"
    claim = reg.claim("uid-1234", station="st1")  # no other station provisions it now,
    claim.serial                                  # and a serial never handed out twice
    reg.record(Entry(...), claim=claim)           # appends to the chain, releases the claim

Every write is one transaction that takes the database's write lock first (BEGIN IMMEDIATE
on SQLite, a row lock on PostgreSQL), so several threads, processes or stations may share
one registry.

Group commit: claims and records from this process's threads (a line's ports) that arrive
while another commit is in progress, or while another station holds the write lock, go in
one transaction together, and each caller returns only after that commit made its write
durable. A group's leader locks the chain head first and takes the queue after, so the group
grows while other stations hold the lock. The group's claims are one statement (a stale claim
taken over in it), its released claims one statement, its rows chained here under the lock
and inserted with one chain-head update; on PostgreSQL the statements are pipelined, and
claims commit in groups of their own that never wait for the chain head. A device's own
refusal (claimed elsewhere, claim lost) fails only that device.

Serials: the high bits come from one counter row, which each process reserves a block of at a
time (`_SerialPool`), so stations' claims do not queue on it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from provision.errors import ProvisionError, RegistryError, clip
from provision.registry.backends import (
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    SEED,
    Backend,
    open_backend,
)
from provision.registry.records import (
    GENESIS_HASH,
    Entry,
    Record,
    Result,
    parse_sec_tags,
    parse_serials,
    row_hash,
    sec_tags_text,
    serials_text,
)

_COLUMNS = (
    "seq, device_id, result, station, operator, started_at, finished_at, cert_serial, "
    "cert_sha256, root_sha256, sec_tags, error_code, cert_pem, prev_hash, row_hash, proof, "
    "device_uuid, supersedes"
)
# A claim older than this is taken to belong to a station that died mid-device.
DEFAULT_LEASE_SECONDS = 900.0
_SERIAL_RANDOM_BITS = 63
_INSERT_RECORD = f"INSERT INTO records ({_COLUMNS}) VALUES ({', '.join('?' * 18)})"
# Rows per multi-row claim statement: far below SQLite's (and PostgreSQL's) parameter limits.
_CHUNK = 200
# Counter values a claim transaction reserves at once when this process has none left.
_SERIAL_BLOCK = 32


@dataclass(frozen=True)
class Claim:
    """This station's exclusive right to provision one device until recorded or released."""

    device_id: str
    station: str
    token: str
    # The certificate serial for this device, allocated in the claim's own transaction.
    serial: int = 0


class _SerialPool:
    """Counter values this process reserved (committed) and has not handed out yet.

    The serial counter is one row every station updates: reserving a block at a time keeps
    that row out of almost every transaction, so stations' claims do not queue on it. The
    values stay unique across stations; values a process reserved and never used are
    skipped, not reused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: list[int] = []

    def take(self, n: int) -> list[int]:
        with self._lock:
            taken, self._values = self._values[:n], self._values[n:]
            return taken

    def give_back(self, values: list[int]) -> None:
        with self._lock:
            self._values = sorted(self._values + values)


class _Group:
    """Writes that commit together: a queue, and at most one transaction in progress (its
    leader's, on the group's own connection)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.queue: list[_Pending] = []
        self.inflight: list[_Pending] = []  # the writes of the transaction in progress
        self.leading = False
        self.db: Backend | None = None

    def take(self) -> list[_Pending]:
        with self.cond:
            self.inflight, self.queue = self.queue, []
            return self.inflight


class _Pending:
    """One caller's write waiting for (or inside) a group commit: a claim to take (`claim`
    with serial 0 until taken), an entry to append (`entry`, releasing `claim` if given), or
    a function to run inside the transaction (`fn`; it must not append to the chain)."""

    __slots__ = ("claim", "done", "entry", "error", "fn", "lease", "value")

    def __init__(
        self,
        *,
        claim: Claim | None = None,
        entry: Entry | None = None,
        lease: float = 0.0,
        fn: Callable[[], Any] | None = None,
    ) -> None:
        self.claim, self.entry, self.lease, self.fn = claim, entry, lease, fn
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


@dataclass(frozen=True)
class ChainReport:
    rows: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _serial(counter: int) -> int:
    """High bits: the database counter (uniqueness, across stations). Low 63 bits: random,
    so serials stay unpredictable (the defence RFC 5280 and CA/B rules ask for against
    chosen-prefix attacks on the signature hash)."""
    return (counter << _SERIAL_RANDOM_BITS) | secrets.randbits(_SERIAL_RANDOM_BITS)


def _claim_row(p: _Pending) -> tuple[str, str, str]:
    assert p.claim is not None
    return (p.claim.device_id, p.claim.station, p.claim.token)


def _claim_key(p: _Pending) -> tuple[str, str]:
    assert p.claim is not None
    return (p.claim.device_id, p.claim.token)


def _claim_chunks(claims: list[_Pending]) -> list[list[_Pending]]:
    """Claims in statements of one lease each (the statement's takeover cutoff), a device
    at most once per statement (PostgreSQL will not upsert one row twice in a statement)."""
    chunks: list[list[_Pending]] = []
    for p in claims:
        assert p.claim is not None
        last = chunks[-1] if chunks else None
        if (
            last is None
            or len(last) >= _CHUNK
            or last[0].lease != p.lease
            or any(q.claim is not None and q.claim.device_id == p.claim.device_id for q in last)
        ):
            chunks.append([p])
        else:
            last.append(p)
    return chunks


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _record(row: tuple[Any, ...]) -> Record:
    """A stored row as a Record. Anyone with the file can write a row: one that does not
    parse (sec_tags or proof not the JSON we write, an unknown result) is a RegistryError
    naming the row, not a crash in `registry show` or `export`."""
    try:
        record = _parse_row(row)
        if record.proof:
            json.loads(record.proof)
        return record
    except (ValueError, TypeError, ProvisionError) as err:
        raise RegistryError(
            f"registry row {clip(row[0], 20)}: malformed ({type(err).__name__})"
        ) from None


def _parse_row(row: tuple[Any, ...]) -> Record:
    (seq, device_id, result, station, operator, started, finished, serial) = row[:8]
    (cert_sha, root_sha, tags, error_code, cert_pem, prev_hash, this_hash, proof) = row[8:16]
    device_uuid = row[16] if len(row) > 16 else None
    supersedes = row[17] if len(row) > 17 else None
    return Record(
        device_id=device_id,
        result=Result(result),
        station=station,
        operator=operator,
        started_at=started,
        finished_at=finished,
        cert_serial=serial,
        cert_sha256=cert_sha,
        root_sha256=root_sha,
        sec_tags=parse_sec_tags(tags),
        error_code=error_code,
        cert_pem=cert_pem,
        proof=proof,
        device_uuid=device_uuid,
        supersedes=parse_serials(supersedes),
        seq=int(seq),
        prev_hash=prev_hash,
        row_hash=this_hash,
    )


class Registry:
    def __init__(self, opener: Callable[[], Backend], *, group_commit: bool = True) -> None:
        # One connection per thread: a line's ports read while another port's commit waits
        # for its fsync (SQLite WAL) or its round trip (PostgreSQL). The database's own
        # locks order the writes.
        self._opener = opener
        self._local = threading.local()
        self._open: list[Backend] = []
        self._open_lock = threading.Lock()
        # SQLite's busy handler sleeps and retries, which lets one thread starve the others;
        # this process's writers queue on a lock instead. (Across processes the busy handler
        # still applies; PostgreSQL queues writers on the chain head's row lock.)
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self._db.name == "sqlite" else contextlib.nullcontext()
        )
        self.group_commit = group_commit
        # SQLite: one group for everything (one database lock, one fsync). PostgreSQL: claims
        # commit in groups of their own, beside the chain's: they never wait for the chain
        # head, which every station's rows wait for.
        self._chain = _Group()
        self._claims = self._chain if self._db.name == "sqlite" else _Group()
        self._serials = _SerialPool()
        self.commits = 0  # transactions committed by claim/record (group commit counts one)
        if self._db.read_only:
            self._check_schema()
        else:
            self._init_schema()

    @property
    def _db(self) -> Backend:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._opener()
            self._local.db = db
            with self._open_lock:
                self._open.append(db)
        return db

    def _group_db(self, group: _Group) -> Backend:
        """The connection a group's commits run on, whichever thread leads (one at a time):
        a port's first write does not wait for a connection of its own."""
        if group.db is None:
            group.db = self._opener()
            with self._open_lock:
                self._open.append(group.db)
        return group.db

    def _committed(self) -> None:
        with self._open_lock:
            self.commits += 1

    @property
    def backend(self) -> str:
        return self._db.name

    @property
    def target(self) -> str:
        return self._db.target

    # -- transactions ---------------------------------------------------------------

    def _write(self, fn: Any) -> Any:
        with self._write_lock, self._db.errors():
            self._db.begin_write()
            try:
                result = fn()
                self._db.commit()
                return result
            except BaseException:
                self._db.rollback()
                raise

    def _grouped(self, op: _Pending | Callable[[], Any]) -> Any:
        """Run `op` in a write transaction, shared with the writes queued meanwhile; return
        (or raise) its own result once the transaction holding it has committed."""
        me = op if isinstance(op, _Pending) else _Pending(fn=op)
        if not self.group_commit:
            self._committed()
            self._alone(me, self._db)
            return me.result()
        group = self._claims if me.entry is None and me.claim is not None else self._chain
        with group.cond:
            group.queue.append(me)
            while not me.done and group.leading:
                group.cond.wait()
            if me.done:
                return me.result()
            group.leading = True  # no commit in progress: lead the next one
        try:
            self._lead(group)
        finally:
            with group.cond:
                if me in group.queue:  # interrupted before the queue was taken
                    group.queue.remove(me)
                    group.inflight.append(me)
                for p in group.inflight:
                    if not p.done:
                        p.error = p.error or RegistryError("registry write interrupted")
                        p.done = True
                group.inflight = []
                group.leading = False
                group.cond.notify_all()
        return me.result()

    def _lead(self, group: _Group) -> None:
        """One transaction for everything queued in `group`. A database error undoes it,
        and each write is then tried in a transaction of its own, so it fails only the write
        that caused it."""
        db = self._group_db(group)
        try:
            with self._write_lock, db.errors():
                try:
                    self._transaction(db, group.take, chain=group is self._chain, optimistic=True)
                    self._committed()
                except BaseException:
                    db.rollback()
                    raise
        except Exception as err:
            if not group.inflight:  # the write lock never came: no write was tried
                for p in group.take():
                    p.error = err
            else:
                for p in group.inflight:
                    p.value, p.error = None, None
                    self._committed()
                    try:
                        self._alone(p, db)
                    except RegistryError as alone_err:
                        p.error = alone_err
        for p in group.inflight:
            p.done = True

    def _alone(self, p: _Pending, db: Backend) -> None:
        """`p` in a transaction of its own."""
        with self._write_lock, db.errors():
            try:
                self._transaction(db, lambda: [p], chain=True)
            except BaseException:
                db.rollback()
                raise

    def _transaction(
        self,
        db: Backend,
        take: Callable[[], list[_Pending]],
        chain: bool,
        *,
        optimistic: bool = False,
    ) -> None:
        """Begin, the writes of `take()`, commit. A write's own refusal (claimed elsewhere,
        a claim lost) is its `error`, decided before anything of it is written.

        `chain`: the transaction may append rows, so it locks the chain head first (on
        SQLite, where BEGIN IMMEDIATE locks the whole database, always). The group is taken
        once the lock is held: the longer other stations hold it, the more writes join. A
        PostgreSQL claims group locks only the claim rows (and the serial counter, once a
        block of serials), so claims never wait for the chain head: it commits beside the
        chain's group and the two fsyncs overlap.

        `optimistic` (a group on PostgreSQL): the rows are chained as if every claim they
        release is still this station's, and the released claims are deleted in the
        statement that moves the chain head, which fails (row_hash NULL) unless it deleted
        every one; the head is then held for one round trip and the commit, not two. A lost
        claim thus undoes the group, whose writes are then tried one by one, each checked
        before anything is written."""
        head: tuple[int, str] = (0, "")
        if chain:
            with db.pipeline():
                db.begin_write()
                head_cur = db.execute(db.lock_head_sql())
            seq_text, prev_hash = head_cur.fetchone()
            head = (int(seq_text), prev_hash)
        batch = take()
        for p in batch:
            if p.fn is not None:
                try:
                    p.value = p.fn()
                except RegistryError as refusal:
                    p.error = refusal
        claims = [p for p in batch if p.entry is None and p.claim is not None]
        records = [p for p in batch if p.entry is not None]
        releases = [p.claim for p in records if p.claim is not None]
        optimistic = (
            optimistic
            and chain
            and db.name == "postgresql"
            and 0 < len(releases) <= _CHUNK
            and len(releases) == len({(c.device_id, c.token) for c in releases})
        )
        serials = self._serials.take(len(claims))  # counter values this process holds
        reserve = max(len(claims) - len(serials), 0) and max(len(claims), _SERIAL_BLOCK)
        now = time.time()
        # A pipeline that would carry nothing still costs a round trip (its sync).
        first_needed = bool(claims or reserve or not records or not chain) or (
            bool(releases) and not optimistic
        )
        try:
            with db.pipeline() if first_needed else contextlib.nullcontext():
                if not chain:
                    db.begin_write()
                taken_curs = [
                    # A claim whose station has been silent past the lease is taken over.
                    db.execute(
                        "INSERT INTO claims (device_id, station, token, claimed_at) VALUES "
                        + ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                        + " ON CONFLICT (device_id) DO UPDATE SET station = excluded.station, "
                        "token = excluded.token, claimed_at = excluded.claimed_at "
                        "WHERE claims.claimed_at < ? RETURNING device_id, token",
                        [v for p in chunk for v in (*_claim_row(p), now)] + [now - chunk[0].lease],
                    )
                    for chunk in _claim_chunks(claims)
                ]
                counter_cur = (
                    db.execute(
                        "UPDATE serial_counter SET next_value = next_value + ? WHERE id = 1 "
                        "RETURNING next_value",
                        (reserve,),
                    )
                    if reserve
                    else None
                )
                released_curs = [
                    db.execute(
                        "DELETE FROM claims WHERE (device_id, token) IN (VALUES "
                        + ", ".join(["(?, ?)"] * len(chunk))
                        + ") RETURNING device_id, token",
                        [v for c in chunk for v in (c.device_id, c.token)],
                    )
                    for chunk in ([] if optimistic else _chunks(releases))
                ]
                if not records:
                    # A refused claim wrote nothing: the rest commit without another look.
                    db.commit()
            taken = {tuple(r) for cur in taken_curs for r in cur.fetchall()}
            released = {tuple(r) for cur in released_curs for r in cur.fetchall()}
            if optimistic:
                released = {(c.device_id, c.token) for c in releases}
            reserved = []
            if counter_cur is not None:
                end = int(counter_cur.fetchone()[0])
                reserved = list(range(end - reserve, end))
            granted = [p for p in claims if _claim_key(p) in taken]
            for p in claims:
                if _claim_key(p) not in taken:
                    p.error = self._held_elsewhere(db, p)
            if records:
                rows = self._chained(records, released, head)
                with db.pipeline():
                    if rows:
                        db.executemany(_INSERT_RECORD, rows)
                        last = rows[-1]
                        if optimistic:
                            db.execute(
                                "WITH gone AS (DELETE FROM claims WHERE (device_id, token) IN "
                                "(VALUES " + ", ".join(["(?, ?)"] * len(releases)) + ") "
                                "RETURNING 1) UPDATE chain_head SET seq = ?, row_hash = "
                                "CASE WHEN (SELECT count(*) FROM gone) = ? THEN ? END "
                                "WHERE id = 1",
                                [v for c in releases for v in (c.device_id, c.token)]
                                + [last[0], len(releases), last[14]],
                            )
                        else:
                            db.execute(
                                "UPDATE chain_head SET seq = ?, row_hash = ? WHERE id = 1",
                                (last[0], last[14]),
                            )
                    db.commit()
        except BaseException:
            self._serials.give_back(serials)
            raise
        # Committed: the reserved block is ours; granted claims take their serials in order,
        # and what is left serves this process's next claims.
        serials += reserved
        for p, counter in zip(granted, serials, strict=False):
            assert p.claim is not None
            p.value = replace(p.claim, serial=_serial(counter))
        self._serials.give_back(serials[len(granted) :])

    @staticmethod
    def _held_elsewhere(db: Backend, p: _Pending) -> RegistryError:
        assert p.claim is not None
        row = db.execute(
            "SELECT station FROM claims WHERE device_id = ?", (p.claim.device_id,)
        ).fetchone()
        holder = row[0] if row else "another station"
        return RegistryError(
            f"device {p.claim.device_id} is being provisioned by station {holder}",
            code="registry.claimed",
        )

    def _chained(
        self, records: list[_Pending], released: set[tuple[str, str]], head: tuple[int, str]
    ) -> list[tuple[Any, ...]]:
        """The rows of `records` chained on from `head`, each record's value set; a record
        whose claim was not released here (taken over by another station) gets its refusal
        and no row."""
        seq, prev = head
        rows = []
        for p in records:
            assert p.entry is not None
            if p.claim is not None:
                key = (p.claim.device_id, p.claim.token)
                if key not in released:
                    p.error = RegistryError(
                        f"device {p.claim.device_id}: claim lost to another station; not recorded",
                        code="registry.claim_lost",
                    )
                    continue
                released.discard(key)  # one claim releases one row, not two
            seq += 1
            digest = row_hash(p.entry, seq, prev)
            values = self._values(p.entry, seq, prev, digest)
            rows.append(values)
            p.value = _record(values)
            prev = digest
        return rows

    def _init_schema(self) -> None:
        def create() -> None:
            if self._db.name == "postgresql":
                # CREATE TABLE IF NOT EXISTS races with itself across sessions.
                self._db.execute("SELECT pg_advisory_xact_lock(7250001)")
            for ddl in SCHEMA:
                self._db.execute(ddl)
            self._db.execute(SEED[0], (SCHEMA_VERSION,))
            self._db.execute(SEED[1], (GENESIS_HASH,))
            self._db.execute(SEED[2])
            (version,) = self._db.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
            while int(version) < SCHEMA_VERSION and int(version) + 1 in MIGRATIONS:
                version = int(version) + 1
                for ddl in MIGRATIONS[version]:
                    self._db.execute(ddl)
                self._db.execute("UPDATE meta SET schema_version = ? WHERE id = 1", (version,))
            if int(version) != SCHEMA_VERSION:
                raise RegistryError(
                    f"{self.target}: registry schema version {version}, this tool knows "
                    f"{SCHEMA_VERSION}"
                )

        self._write(create)

    def _check_schema(self) -> None:
        """A read-only open: the file must already be a registry of this tool's schema."""
        try:
            with self._db.errors():
                row = self._db.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
                self._db.execute("SELECT seq FROM chain_head WHERE id = 1").fetchone()
        except RegistryError:
            raise RegistryError(f"{self.target}: not a provision registry") from None
        if row is None:
            raise RegistryError(f"{self.target}: not a provision registry")
        if int(row[0]) != SCHEMA_VERSION:
            raise RegistryError(
                f"{self.target}: registry schema version {row[0]}, this tool knows "
                f"{SCHEMA_VERSION} (a command that writes, e.g. `line run`, migrates it)"
            )

    # -- serials and claims ---------------------------------------------------------

    def allocate_serial(self) -> int:
        """A certificate serial no other caller of this registry will ever get.

        From this process's block of counter values, or a transaction of its own that
        reserves the next block; the line takes its serial with the claim instead
        (`Claim.serial`), which costs no extra commit.
        """
        (counter,) = self._serials.take(1) or self._reserve_serials()
        return _serial(counter)

    def _reserve_serials(self) -> list[int]:
        """A block of counter values, committed before any is used; the first is returned
        and the rest kept for this process."""

        def bump() -> int:
            row = self._db.execute(
                "UPDATE serial_counter SET next_value = next_value + ? WHERE id = 1 "
                "RETURNING next_value",
                (_SERIAL_BLOCK,),
            ).fetchone()
            return int(row[0])

        end = self._write(bump)
        block = list(range(end - _SERIAL_BLOCK, end))
        self._serials.give_back(block[1:])
        return block[:1]

    def claim(
        self, device_id: str, station: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> Claim:
        """Claim `device_id` for `station`; RegistryError if another claim is live.

        The claim carries the serial for the device's certificate (`Claim.serial`), taken
        from the counter in the same transaction: one commit per device start, not two.
        """
        pending = _Pending(
            claim=Claim(device_id, station, secrets.token_hex(16)), lease=lease_seconds
        )
        return self._grouped(pending)

    def release(self, claim: Claim) -> None:
        """Give a claim up without recording anything (safe to call twice)."""
        self._write(
            lambda: self._db.execute(
                "DELETE FROM claims WHERE device_id = ? AND token = ?",
                (claim.device_id, claim.token),
            )
        )

    def release_station_claims(self, station: str) -> list[str]:
        """Drop every claim `station` holds; return the device ids. For a station starting
        up: a claim under its name is what a killed run of it left behind."""
        with self._db.errors():
            held = self._db.execute(
                "SELECT 1 FROM claims WHERE station = ? LIMIT 1", (station,)
            ).fetchone()
        if held is None:
            return []  # the usual case costs no write transaction

        def drop() -> list[str]:
            rows = self._db.execute(
                "DELETE FROM claims WHERE station = ? RETURNING device_id", (station,)
            ).fetchall()
            return sorted(r[0] for r in rows)

        return self._write(drop)

    def claims(self) -> list[tuple[str, str]]:
        """(device_id, station) of every live claim: devices in flight somewhere."""
        with self._db.errors():
            rows = self._db.execute("SELECT device_id, station FROM claims ORDER BY device_id")
            return [(r[0], r[1]) for r in rows.fetchall()]

    # -- the chain ------------------------------------------------------------------

    def record(self, entry: Entry, claim: Claim | None = None) -> Record:
        """Append `entry` to the chain; with `claim`, release it in the same transaction.

        If the claim was taken over (this station was silent past the lease), nothing is
        written and RegistryError is raised: the other station owns the device now.
        """
        if claim is not None and claim.device_id != entry.device_id:
            raise RegistryError(f"claim for {claim.device_id} used for {entry.device_id}")

        return self._grouped(_Pending(entry=entry, claim=claim))

    @staticmethod
    def _values(entry: Entry, seq: int, prev: str, digest: str) -> tuple[Any, ...]:
        return (
            seq,
            entry.device_id,
            Result(entry.result).value,
            entry.station,
            entry.operator,
            entry.started_at,
            entry.finished_at,
            entry.cert_serial,
            entry.cert_sha256,
            entry.root_sha256,
            sec_tags_text(entry.sec_tags),
            entry.error_code,
            entry.cert_pem,
            prev,
            digest,
            entry.proof,
            entry.device_uuid,
            serials_text(entry.supersedes),
        )

    # -- reading --------------------------------------------------------------------

    def latest(self, device_id: str, *, result: Result | None = None) -> Record | None:
        sql = f"SELECT {_COLUMNS} FROM records WHERE device_id = ?"
        params: list[Any] = [device_id]
        if result is not None:
            sql += " AND result = ?"
            params.append(Result(result).value)
        sql += " ORDER BY seq DESC LIMIT 1"
        with self._db.errors():
            row = self._db.execute(sql, params).fetchone()
        return _record(row) if row else None

    def history(self, device_id: str) -> list[Record]:
        with self._db.errors():
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM records WHERE device_id = ? ORDER BY seq", (device_id,)
            ).fetchall()
        return [_record(r) for r in rows]

    def certificates_in_service(self, device_id: str) -> list[Record]:
        """The device's `ok` records whose certificate no later record supersedes, oldest
        first: more than one means a board was provisioned again and both certificates
        are valid."""
        history = self.history(device_id)
        replaced = {serial for r in history for serial in r.supersedes}
        return [
            r
            for r in history
            if r.result is Result.OK and r.cert_serial and r.cert_serial not in replaced
        ]

    def count(self) -> int:
        with self._db.errors():
            return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def iter_records(self, *, batch: int = 500) -> Iterator[Record]:
        """Every record in chain order, fetched in batches so memory stays flat."""
        sql = f"SELECT {_COLUMNS} FROM records WHERE seq > ? ORDER BY seq LIMIT ?"
        return self._pages(sql, 0, 0, batch)

    def iter_provisioned(self, *, batch: int = 500) -> Iterator[Record]:
        """The latest successful record of each device, by device id (for export)."""
        sql = (
            f"SELECT {_COLUMNS} FROM records r WHERE r.result = 'ok' AND r.device_id > ? "
            "AND r.seq = (SELECT MAX(seq) FROM records x "
            "WHERE x.device_id = r.device_id AND x.result = 'ok') "
            "ORDER BY r.device_id LIMIT ?"
        )
        return self._pages(sql, "", 1, batch)

    def _pages(self, sql: str, start: object, key: int, batch: int) -> Iterator[Record]:
        """The records of `sql` (parameters: the last key seen, the page size) page by page,
        keyed by result column `key`, which the query orders by."""
        last = start
        while True:
            with self._db.errors():
                rows = self._db.execute(sql, (last, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield _record(row)
            last = rows[-1][key]

    def verify(self) -> ChainReport:
        """Walk the chain: an edited row breaks its hash, a deleted row leaves a gap or a
        broken link, deleted rows at the end disagree with the chain head."""
        problems: list[str] = []
        rows = 0
        expected_seq = 1
        prev = GENESIS_HASH
        with self._db.errors():
            self._db.begin_read()
            try:
                head_seq, head_hash = self._db.execute(
                    "SELECT seq, row_hash FROM chain_head WHERE id = 1"
                ).fetchone()
                cur = self._db.execute(f"SELECT {_COLUMNS} FROM records ORDER BY seq")
                while True:
                    chunk = cur.fetchmany(1000)
                    if not chunk:
                        break
                    for raw in chunk:
                        rec = _record(raw)
                        rows += 1
                        if rec.seq != expected_seq:
                            missing = (
                                f"row {expected_seq}"
                                if rec.seq == expected_seq + 1
                                else f"rows {expected_seq}..{rec.seq - 1}"
                            )
                            problems.append(f"{missing} deleted (chain jumps to row {rec.seq})")
                        if rec.prev_hash != prev:
                            problems.append(f"row {rec.seq}: link to the previous row broken")
                        if row_hash(rec, rec.seq, rec.prev_hash) != rec.row_hash:
                            problems.append(f"row {rec.seq} ({rec.device_id}): contents edited")
                        problems += self._superseded_problems(rec)
                        prev = rec.row_hash
                        expected_seq = rec.seq + 1
            finally:
                self._db.rollback()
        last_seq = expected_seq - 1
        if int(head_seq) != last_seq or (last_seq and head_hash != prev):
            if int(head_seq) > last_seq:
                problems.append(
                    f"chain head is row {head_seq} but the last row is {last_seq}: rows deleted"
                )
            else:
                problems.append(f"chain head (row {head_seq}) does not match the last row")
        return ChainReport(rows, tuple(problems))

    def _superseded_problems(self, rec: Record) -> list[str]:
        """A row may supersede only earlier `ok` certificates of its own device."""
        problems = []
        for serial in rec.supersedes:
            found = self._db.execute(
                "SELECT 1 FROM records WHERE device_id = ? AND cert_serial = ? "
                "AND result = 'ok' AND seq < ?",
                (rec.device_id, serial, rec.seq),
            ).fetchone()
            if found is None:
                problems.append(
                    f"row {rec.seq} ({rec.device_id}): supersedes certificate {serial}, "
                    "which is no earlier certificate of this device"
                )
        return problems

    def close(self) -> None:
        with self._open_lock:
            for db in self._open:
                db.close()
            self._open.clear()
        self._chain.db = self._claims.db = None
        self._local = threading.local()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_registry(url: str, *, read_only: bool = False, group_commit: bool = True) -> Registry:
    """Open the registry at a path, `sqlite:///path` or `postgresql://…`; a SQLite file is
    created (and an older schema migrated) unless `read_only`, which opens the database
    read-only and requires an existing registry of this schema. `group_commit=False`: one
    transaction per claim and per record (for comparison in bench/bench_registry.py)."""
    first = open_backend(url, read_only=read_only)
    pending = [first]

    def opener() -> Backend:
        # The connection made here (and checked) serves the opening thread.
        return pending.pop() if pending else open_backend(url, read_only=read_only)

    return Registry(opener, group_commit=group_commit)
