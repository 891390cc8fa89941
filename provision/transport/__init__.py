"""Transports: the only IO in the data path (contract in base.py; URLs in provision.urls)."""

from provision.transport.base import Transport

__all__ = ["Transport"]
