"""Credential sets and their binary bundle format."""

from provision.bundle.model import (
    MAX_SEC_TAG,
    CredentialSet,
    Encoding,
    Slot,
    SlotType,
)

__all__ = ["MAX_SEC_TAG", "CredentialSet", "Encoding", "Slot", "SlotType"]
