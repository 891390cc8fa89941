"""One station in the concurrency test, run as its own process.

    python registry_worker.py URL STATION GO_FILE DEVICE_COUNT SERIALS [PORTS]

Waits until GO_FILE exists (so both stations start together), then allocates SERIALS serials
and tries to claim and record each of DEVICE_COUNT devices, as the line does: the claim brings
the certificate serial. With PORTS, that many threads (a line's ports) share the devices and
the registry, so their claims and records go through group commits. Prints one JSON line with
the serials it got (allocated and from every claim it won), the devices it recorded and the
transactions its claims and records took.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from registry_helpers import entry

from provision.errors import RegistryError
from provision.registry import open_registry


def main() -> None:
    url, station, go_file = sys.argv[1:4]
    devices, serial_count = int(sys.argv[4]), int(sys.argv[5])
    reg = open_registry(url)
    with open(f"{go_file}.{station}.ready", "w"):
        pass
    deadline = time.monotonic() + 30
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        time.sleep(0.005)
    serials: list[int] = []
    recorded: list[str] = []
    # The stations walk the devices from opposite ends, so they meet and compete mid-way.
    order = list(range(devices))
    if station.endswith("b"):
        order.reverse()
    ports = int(sys.argv[6]) if len(sys.argv) > 6 else 1

    def port(n: int) -> None:
        for i in range(n, max(devices, serial_count), ports):
            if i < serial_count:
                serials.append(reg.allocate_serial())
            if i < devices:
                device_id = f"uid-{order[i]:04d}"
                try:
                    claim = reg.claim(device_id, station)
                except RegistryError:
                    continue
                serials.append(claim.serial)
                # Someone else may have finished it between our claims: the line checks
                # this too.
                if reg.latest(device_id) is not None:
                    reg.release(claim)
                    continue
                reg.record(entry(device_id, station=station, serial=claim.serial), claim=claim)
                recorded.append(device_id)
            # A real station spends seconds with each device between registry calls; without
            # a pause, SQLite's busy handler lets one process starve the other for the run.
            time.sleep(0.002)

    threads = [threading.Thread(target=port, args=(n,)) for n in range(ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reg.close()
    print(json.dumps({"serials": serials, "recorded": recorded, "commits": reg.commits}))


if __name__ == "__main__":
    main()
