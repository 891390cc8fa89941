"""Device dialects: each speaks one device language over a Transport (see provision.device).

native (our link protocol, provision.link), at-cmng (nRF91 AT%CMNG), zephyr-shell (Zephyr TLS
credentials shell). A new device family is a new module here and a line in
provision.device.DIALECTS.
"""
