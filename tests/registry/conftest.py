"""Registry fixtures: every registry test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from PROVISION_TEST_PG_URL when set (CI may start one with
.ci/services/postgres.sh); otherwise this conftest starts a throwaway cluster itself with the
same script when the PostgreSQL binaries are installed. Each test gets its own schema, so
tests never see each other's rows. Without PostgreSQL the `postgres` tests skip with the
reason, or fail when PROVISION_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from service_scripts import skip_or_fail, start_service, stop_service


def _have_postgres_binaries() -> bool:
    return shutil.which("initdb") is not None or any(
        Path("/usr/lib/postgresql").glob("*/bin/initdb")
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[str | None, str]]:
    """(base URL, "") of a running server, or (None, why there is none)."""
    url = os.environ.get("PROVISION_TEST_PG_URL")
    if url:
        yield url, ""
        return
    if not _have_postgres_binaries():
        yield None, "PostgreSQL is not installed (apt-get install postgresql)"
        return
    env = {k: v for k, v in os.environ.items() if k != "PROVISION_TEST_PG_DIR"}
    values, reason = start_service("postgres.sh", "start PostgreSQL", env)
    if values is None:
        yield None, reason
        return
    try:
        yield values["PROVISION_TEST_PG_URL"], ""
    finally:
        stop_service("postgres.sh", values["PROVISION_TEST_PG_DIR"])


@pytest.fixture
def pg_url(pg_server: tuple[str | None, str]) -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema: an empty registry per test."""
    base, reason = pg_server
    if base is None:
        skip_or_fail(reason)
    assert base is not None
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-c search_path={schema}')}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "registry.sqlite")
    return request.getfixturevalue("pg_url")
