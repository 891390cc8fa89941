"""A record may name earlier certificates of its device that it supersedes (a board
provisioned again, schema 4): hashed into the chain, checked by `verify`, and a schema 2
registry is migrated with its rows still verifying."""

from __future__ import annotations

from registry_helpers import entry, raw_sql

from provision.registry import open_registry


def test_supersedes_round_trips_and_verifies(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        first = reg.record(entry("uid-1", serial=1))
        reg.record(entry("uid-1", serial=2, supersedes=(first.cert_serial,)))
        assert reg.latest("uid-1").supersedes == ("1",)
        assert [r.cert_serial for r in reg.certificates_in_service("uid-1")] == ["2"]
        assert reg.verify().ok


def test_supersedes_is_covered_by_the_row_hash(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-1", serial=1))
        reg.record(entry("uid-1", serial=2, supersedes=("1",)))
    raw_sql(registry_url, "UPDATE records SET supersedes = NULL WHERE seq = 2")
    with open_registry(registry_url) as reg:
        assert reg.verify().problems == ("row 2 (uid-1): contents edited",)


def test_verify_rejects_superseding_what_is_not_an_earlier_certificate_of_the_device(
    registry_url: str,
) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-2", serial=5))
        reg.record(entry("uid-1", serial=6, supersedes=("5", "7")))
        report = reg.verify()
    assert report.problems == (
        "row 2 (uid-1): supersedes certificate 5, which is no earlier certificate of this device",
        "row 2 (uid-1): supersedes certificate 7, which is no earlier certificate of this device",
    )


def test_schema_2_registry_is_migrated_and_its_rows_still_verify(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        reg.record(entry("uid-1", serial=1))
    raw_sql(registry_url, "ALTER TABLE records DROP COLUMN supersedes")
    raw_sql(registry_url, "ALTER TABLE records DROP COLUMN device_uuid")
    raw_sql(registry_url, "UPDATE meta SET schema_version = 2 WHERE id = 1")
    with open_registry(registry_url) as reg:
        assert reg.verify().ok
        reg.record(entry("uid-1", serial=2, supersedes=("1",)))
        report = reg.verify()
        assert report.ok and report.rows == 2, report.problems
        assert reg.certificates_in_service("uid-1")[0].cert_serial == "2"
