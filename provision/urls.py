"""Which code opens which `--port` URL: the one place where URL schemes are registered.

Transports never name the simulator or the factory line; this table does, as "module:function"
strings resolved on first use, so host code imports the simulator only when a URL asks for it.
Anything else is a pyserial URL or a device path (provision.transport.serial).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from provision.errors import InputError
from provision.transport.base import Transport

TransportFactory = Callable[[str, "int | None"], Transport]

SCHEMES: dict[str, str] = {
    # sim://KIND?options — a simulated device on an in-process pair (virtual clock).
    "sim": "provision.sim.serve:open_sim_transport",
    # jig://NAME?kind=… — a simulated test jig: a new device each time the port is opened.
    "jig": "provision.line.simulate:open_jig_transport",
}
SERIAL = "provision.transport.serial:open_serial"


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else ""


def open_url(url: str, baud: int | None = None) -> Transport:
    """Open `url`: a registered scheme, else any pyserial URL or device path."""
    scheme = scheme_of(url)
    target = SCHEMES.get(scheme, SERIAL)
    module_name, func_name = target.split(":")
    try:
        factory: TransportFactory = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as err:
        raise InputError(f"{url}: no transport for scheme {scheme!r} ({err})") from None
    return factory(url, baud)
