"""Export for cloud onboarding: one row per provisioned device, its certificate and fingerprint.

Formats: our own `csv` and `json`; `nrfcloud`, the onboarding CSV nRF Cloud takes and
nrfcloud-utils' `save_onboarding_csv` writes (no header; device id, subtype, tags, firmware
types, certificate PEM; `csv.writer` with LF line ends and minimal quoting); `aws-iot`, one
JSON object per line, each the request body of AWS IoT's RegisterCertificateWithoutCA
(`aws iot register-certificate-without-ca --cli-input-json "$line"`, multi-account
registration). Sources in docs/factory-line.md.

Written as a stream (records come from the database in batches), to a temporary file that
replaces the destination only once complete.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from provision.errors import InputError, OverwriteError
from provision.registry.records import Record

FORMATS = ("csv", "json", "nrfcloud", "aws-iot")
# nrfcloud-utils device_credentials_installer defaults: no subtype, no tags, FOTA of the
# application and the modem.
NRFCLOUD_SUBTYPE = ""
NRFCLOUD_TAGS = ""
NRFCLOUD_FW_TYPES = "APP|MODEM"
AWS_IOT_STATUS = "ACTIVE"
FIELDS = (
    "device_id",
    "cert_serial",
    "cert_sha256",
    "root_sha256",
    "sec_tags",
    "station",
    "finished_at",
    "cert_pem",
    "device_uuid",
)


def _row(rec: Record) -> dict[str, object]:
    return {
        "device_id": rec.device_id,
        "cert_serial": rec.cert_serial,
        "cert_sha256": rec.cert_sha256,
        "root_sha256": rec.root_sha256,
        "sec_tags": list(rec.sec_tags),
        "station": rec.station,
        "finished_at": rec.finished_at,
        "cert_pem": rec.cert_pem,
        "device_uuid": rec.device_uuid,
    }


def nrfcloud_device_id(rec: Record) -> str:
    """The id nRF Cloud knows the device by: its certificate's common name (what it presents,
    and what nrfcloud-utils takes from the CSR), else the device UUID, else our device id."""
    if rec.cert_pem:
        from provision.pki.certs import common_name, load_certificate

        found = common_name(load_certificate(rec.cert_pem.encode(), "registry certificate").subject)
        if found:
            return found
    return rec.device_uuid or rec.device_id


def write_export(records: Iterable[Record], fmt: str, out: TextIO) -> int:
    """Write `records` in `fmt` (FORMATS) to `out`; return how many were written."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (valid: {', '.join(FORMATS)})")
    count = 0
    if fmt == "nrfcloud":
        writer = csv.writer(out, delimiter=",", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        for rec in records:
            writer.writerow(
                [
                    nrfcloud_device_id(rec),
                    NRFCLOUD_SUBTYPE,
                    NRFCLOUD_TAGS,
                    NRFCLOUD_FW_TYPES,
                    rec.cert_pem or "",
                ]
            )
            count += 1
        return count
    if fmt == "aws-iot":
        for rec in records:
            body = {"certificatePem": rec.cert_pem or "", "status": AWS_IOT_STATUS}
            out.write(json.dumps(body) + "\n")
            count += 1
        return count
    if fmt == "csv":
        dict_writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        dict_writer.writeheader()
        for rec in records:
            row = _row(rec)
            row["sec_tags"] = " ".join(str(t) for t in rec.sec_tags)
            dict_writer.writerow(row)
            count += 1
        return count
    out.write("[")
    for rec in records:
        out.write(",\n " if count else "\n ")
        out.write(json.dumps(_row(rec), sort_keys=True))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def export_to(records: Iterable[Record], fmt: str, path: Path | None, *, force: bool) -> int:
    """Export to `path` (all or nothing) or to stdout when `path` is None or "-"."""
    if path is None or str(path) == "-":
        return write_export(records, fmt, sys.stdout)
    path = Path(path)
    if path.is_dir():
        # os.replace onto a folder fails only after the export was written.
        raise InputError(f"{path}: is a directory; give the export file's name")
    if path.exists() and not force:
        raise OverwriteError(f"{path}: file exists; use --force to overwrite")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output directory does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            count = write_export(records, fmt, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        return count
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
