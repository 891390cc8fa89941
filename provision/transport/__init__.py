"""The only IO between host code and a device: pyserial URLs, ptys, sockets, in-process pairs."""

from provision.transport.base import Transport, open_transport, register_scheme

__all__ = ["Transport", "open_transport", "register_scheme"]
