"""Device dialects: each speaks one device language over a Transport (see provision.device).

native (our link protocol, provision.link), at-cmng (nRF91 AT%CMNG), at-shell (AT%CMNG through
an NCS shell's `at` command), zephyr-shell (Zephyr TLS credentials shell); lines.py holds what
the line-based ones share. A new device family is a new module here and a line in
provision.device.DIALECTS.
"""
