"""The link's two kinds of protocol error (after h11): whose fault it was decides what to do."""

from __future__ import annotations

from provision.errors import LinkError


class ProtocolError(LinkError):
    """Base of link protocol errors."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not a valid frame or message. The only exception any
    parser in provision.link raises on any input."""


class LocalProtocolError(ProtocolError):
    """Our side misused the API (a message that cannot be built, a field out of range)."""
