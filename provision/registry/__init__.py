"""The device registry: every certificate issued, to which device, where and by whom.

SQLite (WAL) by default, PostgreSQL for several stations sharing one line; the same schema
and the same hash chain on both. Only public material is stored: never a private key or a
password.
"""

from provision.registry.records import Entry, Record, Result
from provision.registry.store import ChainReport, Claim, Registry, open_registry

__all__ = ["ChainReport", "Claim", "Entry", "Record", "Registry", "Result", "open_registry"]
