"""Test helpers: entries, and raw SQL that goes around the registry (to tamper with it)."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime

from provision.registry import Entry, Result

FAKE_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake{n}\n-----END CERTIFICATE-----\n"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def entry(device_id: str, *, result: Result = Result.OK, serial: int | None = None, **kw) -> Entry:
    ok = result is Result.OK
    pem = FAKE_PEM.format(n=device_id) if ok else None
    fields = dict(
        device_id=device_id,
        result=result,
        station=kw.pop("station", "st-1"),
        operator=kw.pop("operator", "alice"),
        started_at=now(),
        finished_at=now(),
        cert_serial=(f"{serial:x}" if serial is not None else None),
        cert_sha256=hashlib.sha256(pem.encode()).hexdigest() if pem else None,
        root_sha256="ab" * 32,
        sec_tags=(42, 43),
        error_code=None if ok else "link.timeout",
        cert_pem=pem,
    )
    fields.update(kw)
    return Entry(**fields)


def raw_sql(url: str, sql: str, params: tuple = ()) -> None:
    """Run one statement directly on the database, as someone tampering with it would."""
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)
        return
    conn = sqlite3.connect(url, isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()
