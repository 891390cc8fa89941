"""Shared PKI fixtures: one root and one intermediate per test session (P-256 keeps it fast)."""

from __future__ import annotations

import pytest

from provision.pki.authority import Authority, create_root_ca


@pytest.fixture(scope="session")
def root() -> Authority:
    return create_root_ca("Test Root CA", organization="provision tests")


@pytest.fixture(scope="session")
def intermediate(root: Authority) -> Authority:
    return root.issue_intermediate("Test Issuing CA", path_length=0)
