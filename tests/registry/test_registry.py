"""The registry on SQLite and PostgreSQL: records, hash chain, serials, claims, export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from registry_helpers import entry, raw_sql

from provision.errors import PolicyError, RegistryError
from provision.registry import Result, open_registry
from provision.registry.export import write_export


def test_record_round_trips_every_field(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        sent = entry("uid-1", serial=reg.allocate_serial())
        stored = reg.record(sent)
        got = reg.latest("uid-1")
    assert got == stored
    assert got is not None and got.seq == 1
    for name in ("device_id", "cert_serial", "cert_sha256", "root_sha256", "sec_tags", "cert_pem"):
        assert getattr(got, name) == getattr(sent, name)
    assert got.result is Result.OK


def test_latest_and_history_follow_chain_order(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-1", result=Result.FAILED))
        reg.record(entry("uid-2", serial=reg.allocate_serial()))
        ok = reg.record(entry("uid-1", serial=reg.allocate_serial()))
        assert [r.result for r in reg.history("uid-1")] == [Result.FAILED, Result.OK]
        assert reg.latest("uid-1") == ok
        assert reg.latest("uid-1", result=Result.FAILED).seq == 1
        assert reg.latest("nobody") is None
        assert reg.count() == 3


def test_registry_refuses_private_key_material() -> None:
    with pytest.raises(PolicyError, match="private key"):
        entry("uid-1", cert_pem="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(PolicyError, match="private key"):
        entry("uid-1", cert_pem="-----BEGIN EC PRIVATE KEY-----\nAAAA\n")


def test_intact_chain_verifies(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        for i in range(5):
            reg.record(entry(f"uid-{i}", serial=reg.allocate_serial()))
        report = reg.verify()
    assert report.ok, report.problems
    assert report.rows == 5


def test_empty_registry_verifies(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        assert reg.verify().ok


def _five(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        for i in range(5):
            reg.record(entry(f"uid-{i}", serial=reg.allocate_serial()))


def test_verify_detects_edited_row(registry_url: str) -> None:
    _five(registry_url)
    raw_sql(registry_url, "UPDATE records SET station = 'evil' WHERE seq = 3")
    with open_registry(registry_url) as reg:
        report = reg.verify()
    assert not report.ok
    assert any("row 3" in p and "edited" in p for p in report.problems)


def test_verify_detects_edit_with_recomputed_hash(registry_url: str) -> None:
    # Someone who rewrites a row *and* its hash still breaks the next row's link.
    _five(registry_url)
    raw_sql(registry_url, "UPDATE records SET row_hash = ? WHERE seq = 2", ("f" * 64,))
    with open_registry(registry_url) as reg:
        report = reg.verify()
    assert not report.ok
    assert any("row 3" in p and "link" in p for p in report.problems)


def test_verify_detects_deleted_middle_row(registry_url: str) -> None:
    _five(registry_url)
    raw_sql(registry_url, "DELETE FROM records WHERE seq = 2")
    with open_registry(registry_url) as reg:
        report = reg.verify()
    assert not report.ok
    assert any("row 2 deleted" in p for p in report.problems)


def test_verify_detects_deleted_last_rows(registry_url: str) -> None:
    _five(registry_url)
    raw_sql(registry_url, "DELETE FROM records WHERE seq >= 4")
    with open_registry(registry_url) as reg:
        report = reg.verify()
    assert not report.ok
    assert any("rows deleted" in p for p in report.problems)


def test_verify_detects_forged_row_appended_without_head(registry_url: str) -> None:
    _five(registry_url)
    raw_sql(
        registry_url,
        "INSERT INTO records (seq, device_id, result, station, operator, started_at, "
        "finished_at, sec_tags, prev_hash, row_hash) "
        "VALUES (6, 'uid-x', 'ok', 'st-1', 'mallory', 't', 't', '[]', ?, ?)",
        ("0" * 64, "1" * 64),
    )
    with open_registry(registry_url) as reg:
        report = reg.verify()
    assert not report.ok
    assert any("row 6" in p for p in report.problems)
    assert any("chain head" in p for p in report.problems)


def test_serials_are_unique_positive_and_fit_x509(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        serials = [reg.allocate_serial() for _ in range(200)]
    assert len(set(serials)) == 200
    assert all(0 < s < 2**159 for s in serials)


def test_claims_carry_serials_from_the_same_counter(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        first = reg.claim("uid-1", "st-1")
        loose = reg.allocate_serial()
        second = reg.claim("uid-2", "st-1")
        # A refused claim rolls back whole: it takes no serial.
        with pytest.raises(RegistryError):
            reg.claim("uid-1", "st-2")
        third = reg.claim("uid-3", "st-1")
    assert [s >> 63 for s in (first.serial, loose, second.serial, third.serial)] == [1, 2, 3, 4]
    assert all(0 < s < 2**159 for s in (first.serial, second.serial, third.serial))


def test_each_station_draws_serials_from_a_block_of_its_own(registry_url: str) -> None:
    """Two stations' claims interleave; each takes its serials from a block of the counter
    it reserved, so the shared counter row is written once a block, not once a claim."""
    with open_registry(registry_url) as a, open_registry(registry_url) as b:
        got: dict[str, list[int]] = {"a": [], "b": []}
        for i in range(40):
            got["a"].append(a.claim(f"uid-a{i}", "st-a").serial >> 63)
            got["b"].append(b.claim(f"uid-b{i}", "st-b").serial >> 63)
    assert got["a"] == list(range(1, 33)) + list(range(65, 73))
    assert got["b"] == list(range(33, 65)) + list(range(97, 105))


def test_serial_column_is_unique(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-1", serial=1234))
        with pytest.raises(RegistryError, match="constraint"):
            reg.record(entry("uid-2", serial=1234))
        # The failed append left the chain as it was.
        assert reg.count() == 1
        assert reg.verify().ok


def test_claim_is_exclusive_until_released(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        claim = reg.claim("uid-1", "st-1")
        with pytest.raises(RegistryError, match="being provisioned by station st-1") as info:
            reg.claim("uid-1", "st-2")
        assert info.value.code == "registry.claimed"
        assert reg.claims() == [("uid-1", "st-1")]
        reg.release(claim)
        reg.claim("uid-1", "st-2")


def test_record_with_claim_releases_it(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        claim = reg.claim("uid-1", "st-1")
        reg.record(entry("uid-1"), claim=claim)
        assert reg.claims() == []


def test_stale_claim_is_taken_over_and_old_owner_cannot_record(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        old = reg.claim("uid-1", "st-1")
        new = reg.claim("uid-1", "st-2", lease_seconds=0.0)
        with pytest.raises(RegistryError, match="claim lost"):
            reg.record(entry("uid-1", station="st-1"), claim=old)
        assert reg.count() == 0
        reg.record(entry("uid-1", station="st-2"), claim=new)
        assert reg.latest("uid-1").station == "st-2"


def test_export_lists_latest_good_certificate_per_device(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-b", serial=reg.allocate_serial()))
        reg.record(entry("uid-a", result=Result.FAILED))
        reg.record(entry("uid-c", result=Result.FAILED))
        newest = reg.record(entry("uid-b", serial=reg.allocate_serial()))
        reg.record(entry("uid-a", serial=reg.allocate_serial()))
        out = io.StringIO()
        assert write_export(reg.iter_provisioned(batch=1), "json", out) == 2
        rows = json.loads(out.getvalue())
        assert [r["device_id"] for r in rows] == ["uid-a", "uid-b"]
        assert rows[1]["cert_serial"] == newest.cert_serial
        assert rows[1]["cert_pem"].startswith("-----BEGIN CERTIFICATE-----")
        out = io.StringIO()
        write_export(reg.iter_provisioned(), "csv", out)
        parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert [r["device_id"] for r in parsed] == ["uid-a", "uid-b"]
        assert parsed[0]["sec_tags"] == "42 43"
        assert parsed[1]["cert_sha256"] == newest.cert_sha256


def test_iter_records_streams_in_order(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        for i in range(7):
            reg.record(entry(f"uid-{i}"))
        assert [r.seq for r in reg.iter_records(batch=3)] == list(range(1, 8))


def test_missing_sqlite_registry_is_an_error_when_not_creating(tmp_path) -> None:
    with pytest.raises(RegistryError, match="no registry here"):
        open_registry(str(tmp_path / "nope.sqlite"), read_only=True)


@pytest.mark.postgres
def test_unreachable_postgres_is_one_line_error_without_password() -> None:
    with pytest.raises(RegistryError) as info:
        open_registry("postgresql://u:s3cret@127.0.0.1:1/x?connect_timeout=2")
    assert "s3cret" not in str(info.value)
    assert "\n" not in str(info.value)


PROOF = '{"result":"accepted","server":"127.0.0.1:8443","sec_tag":42,"version":"TLSv1.3"}'


def test_proof_is_stored_hashed_and_shown(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-1", serial=1, proof=PROOF))
        reg.record(entry("uid-2", serial=2))
        got = reg.latest("uid-1")
        assert got.proof == PROOF
        assert got.public_dict()["proof"]["version"] == "TLSv1.3"
        assert reg.latest("uid-2").proof is None
        assert reg.verify().ok
    edited = PROOF.replace("accepted", "rejected")
    raw_sql(registry_url, "UPDATE records SET proof = ? WHERE seq = 1", (edited,))
    with open_registry(registry_url) as reg:
        report = reg.verify()
    assert not report.ok and any("row 1 (uid-1): contents edited" in p for p in report.problems)


def test_proof_refuses_private_key_material(registry_url: str) -> None:
    with pytest.raises(PolicyError, match="proof"):
        entry("uid-1", proof='{"detail":"-----BEGIN PRIVATE KEY-----"}')


DEVICE_UUID = "50363154-3931-44f0-8022-121b6401627d"


def test_device_uuid_is_kept_and_covered_by_the_chain(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-1", serial=1, device_uuid=DEVICE_UUID))
        assert reg.latest("uid-1").device_uuid == DEVICE_UUID
        assert reg.latest("uid-1").public_dict()["device_uuid"] == DEVICE_UUID
    raw_sql(registry_url, "UPDATE records SET device_uuid = 'forged' WHERE device_id = 'uid-1'")
    with open_registry(registry_url) as reg:
        assert not reg.verify().ok


def test_schema_1_registry_is_migrated_and_its_rows_still_verify(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-1", serial=1))
        reg.record(entry("uid-2", serial=2))
    # What a registry written by schema 1 looks like: no proof column (nor schemas 3's, 4's).
    raw_sql(registry_url, "ALTER TABLE records DROP COLUMN supersedes")
    raw_sql(registry_url, "ALTER TABLE records DROP COLUMN proof")
    raw_sql(registry_url, "ALTER TABLE records DROP COLUMN device_uuid")
    raw_sql(registry_url, "UPDATE meta SET schema_version = 1 WHERE id = 1")
    with open_registry(registry_url) as reg:
        assert reg.verify().ok
        reg.record(entry("uid-3", serial=3, proof=PROOF))
        reg.record(entry("uid-4", serial=4, device_uuid=DEVICE_UUID))
        report = reg.verify()
        assert report.ok and report.rows == 4, report.problems
        assert reg.latest("uid-3").proof == PROOF
        assert reg.latest("uid-4").device_uuid == DEVICE_UUID
        assert reg.latest("uid-1").device_uuid is None
    raw_sql(registry_url, "UPDATE meta SET schema_version = 99 WHERE id = 1")
    with pytest.raises(RegistryError, match="schema version 99"):
        open_registry(registry_url)


def _hold_a_commit(reg):  # type: ignore[no-untyped-def]
    """Start a write that stays in its transaction until the returned event is set, so
    every write made meanwhile queues for the next group commit."""
    import threading

    inside, release = threading.Event(), threading.Event()

    def slow() -> None:
        inside.set()
        release.wait(10)

    leader = threading.Thread(target=reg._grouped, args=(slow,))
    leader.start()
    assert inside.wait(10)
    return leader, release


def test_writes_queued_during_a_commit_share_the_next_one(registry_url: str) -> None:
    import threading
    import time

    with open_registry(registry_url) as reg:
        leader, release = _hold_a_commit(reg)
        before = reg.commits
        done: list[str] = []

        def station_port(i: int) -> None:
            claim = reg.claim(f"dev-{i}", "st-1")
            reg.record(entry(f"dev-{i}", serial=claim.serial), claim=claim)
            done.append(f"dev-{i}")

        ports = [threading.Thread(target=station_port, args=(i,)) for i in range(8)]
        for t in ports:
            t.start()
        time.sleep(0.2)
        assert done == []  # nobody is told "done" before a commit made their row durable
        release.set()
        leader.join(10)
        for t in ports:
            t.join(10)
        assert sorted(done) == sorted(f"dev-{i}" for i in range(8))
        assert reg.count() == 8 and reg.verify().ok and reg.claims() == []
        # 8 claims + 8 records in far fewer transactions than 16.
        assert reg.commits - before < 16


def test_a_lost_claim_in_a_group_commit_leaves_the_other_rows(registry_url: str) -> None:
    import threading

    with open_registry(registry_url) as reg:
        good = reg.claim("dev-good", "st-1")
        lost = reg.claim("dev-lost", "st-1")
        reg.release(lost)  # as if another station had taken it over
        leader, release = _hold_a_commit(reg)
        errors: list[BaseException] = []

        def write(e, claim) -> None:  # type: ignore[no-untyped-def]
            try:
                reg.record(e, claim=claim)
            except RegistryError as err:
                errors.append(err)

        threads = [
            threading.Thread(target=write, args=(entry("dev-good", serial=good.serial), good)),
            threading.Thread(target=write, args=(entry("dev-lost", serial=lost.serial), lost)),
        ]
        for t in threads:
            t.start()
        release.set()
        leader.join(10)
        for t in threads:
            t.join(10)
        assert [getattr(e, "code", None) for e in errors] == ["registry.claim_lost"]
        assert [r.device_id for r in reg.iter_records()] == ["dev-good"]
        assert reg.verify().ok


def test_a_database_error_in_a_group_commit_fails_only_its_own_write(registry_url: str) -> None:
    import threading

    with open_registry(registry_url) as reg:
        leader, release = _hold_a_commit(reg)
        errors: list[BaseException] = []

        def write(device_id: str) -> None:
            try:
                reg.record(entry(device_id, serial=77))  # the same certificate serial twice
            except RegistryError as err:
                errors.append(err)

        threads = [threading.Thread(target=write, args=(d,)) for d in ("dev-a", "dev-b")]
        for t in threads:
            t.start()
        release.set()
        leader.join(10)
        for t in threads:
            t.join(10)
        assert len(errors) == 1 and "constraint" in str(errors[0])
        assert reg.count() == 1 and reg.verify().ok


@pytest.mark.postgres
def test_claims_do_not_wait_for_a_commit_holding_the_chain_head_on_postgresql(
    pg_url: str,
) -> None:
    """On PostgreSQL claims commit in groups of their own: a station's claims go on while
    its rows (or another station's) hold the chain head. (On SQLite one lock covers the
    whole database, and claims share the rows' commit.)"""
    import threading

    with open_registry(pg_url) as reg:
        leader, release = _hold_a_commit(reg)  # inside a transaction holding the head
        claimed = threading.Event()
        got: list[int] = []

        def claim() -> None:
            got.append(reg.claim("uid-1", "st-1").serial)
            claimed.set()

        worker = threading.Thread(target=claim)
        worker.start()
        try:
            assert claimed.wait(10), "the claim waited for the chain head's commit"
        finally:
            release.set()
            leader.join(10)
            worker.join(10)
        assert got and got[0] >> 63 == 1
        assert reg.claims() == [("uid-1", "st-1")]
