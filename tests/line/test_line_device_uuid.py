"""The line's device-keygen flow on nRF91 modems: each device's UUID, from its signed %KEYGEN
attestation, is recorded, and the nRF Cloud export names each device as its certificate does."""

from __future__ import annotations

import io
import uuid

from provision.line import Line
from provision.registry import open_registry
from provision.registry.export import write_export


def test_the_line_records_each_modems_uuid_and_the_nrfcloud_export_names_it(station, jig):
    cfg = station([jig("at-cmng")], dialect="at-cmng", flow="device-keygen")
    outcomes: list = []
    summary = Line(cfg, operator="tester", emit=outcomes.append, limit=2).run()
    assert summary.counts == {"ok": 2}
    with open_registry(cfg.registry) as reg:
        uuids = {reg.latest(o.device_id).device_uuid for o in outcomes}
        records = list(reg.iter_provisioned())
    assert len(uuids) == 2 and all(uuid.UUID(u).version == 4 for u in uuids)
    text = io.StringIO()
    write_export(records, "nrfcloud", text)
    rows = [row for row in text.getvalue().split('-----END CERTIFICATE-----\n"\n') if row]
    # The station's subject is CN={device_id}: nRF Cloud knows a device by the CN it presents.
    assert sorted(row.split(",")[0] for row in rows) == sorted(o.device_id for o in outcomes)
