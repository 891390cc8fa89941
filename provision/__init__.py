"""provision: get X.509 credentials onto embedded devices."""

__version__ = "0.1.0"
