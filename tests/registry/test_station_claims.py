"""A station starting up frees the claims its own name still holds (a killed run's), and
only those: another station's claim stays until its lease runs out."""

from __future__ import annotations

import pytest

from provision.errors import RegistryError
from provision.registry import open_registry


def test_station_releases_only_its_own_claims(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        reg.claim("uid-1", "st-1")
        reg.claim("uid-2", "st-1")
        reg.claim("uid-3", "st-2")
        assert reg.release_station_claims("st-1") == ["uid-1", "uid-2"]
        assert reg.claims() == [("uid-3", "st-2")]
        assert reg.release_station_claims("st-1") == []
        reg.claim("uid-1", "st-1")  # free again at once, not after the lease
        with pytest.raises(RegistryError, match="by station st-2"):
            reg.claim("uid-3", "st-1")
