"""Tables at 80 and 200 columns: identifiers (file names, serials, ids, timestamps, ports)
stay on one line, free text folds; the live line view keeps one row per port, fixed widths,
and the error's message; piped output carries no terminal codes."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
from rich.console import Console

from provision.cli.common import table
from provision.cli.line import _status_table
from provision.line.runner import PortState
from provision.line.station import Step
from provision.registry import Entry, Result, open_registry

WIDTHS = ["80", "200"]
ANSI = re.compile(r"\x1b\[")


def _render(renderable, width: int) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, force_terminal=False).print(renderable)
    return buffer.getvalue()


@pytest.mark.parametrize("columns", WIDTHS)
def test_issued_file_names_stay_on_one_line(cli, tmp_path, monkeypatch, columns):
    monkeypatch.chdir(tmp_path)
    assert cli(["pki", "init-ca", "--no-password", "-o", "ca"]).exit_code == 0
    r = cli(
        [
            "pki",
            "issue",
            "client",
            "--ca",
            "ca",
            "-o",
            "dev",
            "--device-id",
            "imei-350457790000001",
        ],
        env={"COLUMNS": columns},
    )
    assert r.exit_code == 0, r.output
    for name in ("dev/imei-350457790000001.crt", "dev/imei-350457790000001.key"):
        assert any(name in line for line in r.stdout.splitlines()), r.stdout
    assert not ANSI.search(r.stdout)


@pytest.mark.parametrize("columns", WIDTHS)
def test_registry_history_keeps_timestamps_and_serials_whole(cli, tmp_path, columns):
    url = str(tmp_path / "line.sqlite")
    stamp = "2026-12-07T19:40:49.123+00:00"
    with open_registry(url) as reg:
        serial = reg.allocate_serial()
        reg.record(
            Entry(
                device_id="imei-350457790000001",
                result=Result.OK,
                station="station-01",
                operator="alice",
                started_at=stamp,
                finished_at=stamp,
                cert_serial=f"{serial:x}",
                cert_sha256="ab" * 32,
                root_sha256="cd" * 32,
                sec_tags=(42, 43),
                error_code=None,
                cert_pem="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            )
        )
    r = cli(["registry", "show", "-r", url, "imei-350457790000001"], env={"COLUMNS": columns})
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert any("2026-12-07 19:40:49" in line for line in lines), r.stdout
    assert any(f"{serial:x}" in line for line in lines), r.stdout


@pytest.mark.parametrize("width", [80, 200])
def test_free_text_folds_while_the_code_stays_whole(width):
    rows = table("severity", "code", "message")
    message = "the certificate expires within 30 days of the check time " * 3
    rows.add_row("warning", "cert.expires_soon_for_the_device_profile", message)
    text = _render(rows, width)
    assert any("cert.expires_soon_for_the_device_profile" in line for line in text.splitlines())
    assert all(len(line) <= width for line in text.splitlines())
    assert "".join(message.split()) in "".join(text.split())


def test_identifiers_fold_rather_than_end_in_an_ellipsis_when_alone_too_wide():
    rows = table("serial")
    rows.add_row("1c50b7e2b498ca229" * 3)
    text = _render(rows, 20)
    assert "…" not in text and "".join(text.split()) == "serial" + "1c50b7e2b498ca229" * 3


def _line(states: list[PortState]):
    return SimpleNamespace(cfg=SimpleNamespace(station="st-1"), states={s.port: s for s in states})


@pytest.mark.parametrize("width", [80, 200])
def test_live_view_has_one_row_per_port_fixed_widths_and_the_message(width):
    ports = [f"/dev/serial/by-id/usb-SEGGER_J-Link_00105012345{i}-if00" for i in range(3)]
    first = [PortState(port) for port in ports]
    second = [PortState(port) for port in ports]
    second[0].step, second[0].device_id = Step.WRITE, "imei-350457790000001"
    second[1].last_error, second[1].last_message = "link.timeout", "no answer to HELLO " * 5
    second[2].counts["ok"] = 1234
    before = _render(_status_table(_line(first), width), width).splitlines()
    after = _render(_status_table(_line(second), width), width).splitlines()
    # title, header, one row per port
    assert len(before) == len(after) == 2 + len(ports), after
    assert [len(line.rstrip()) for line in before[:2]] == [len(line.rstrip()) for line in after[:2]]
    header = after[1]
    columns = ("state", "ok/skip/fail", "last error")
    assert [header.index(h) for h in columns] == [before[1].index(h) for h in columns]
    # The port's distinguishing end (serial, interface) is always shown.
    assert "123451-if00" in after[3] and "123450-if00" in after[2]
    assert "link.timeout: no answer" in after[3]
    assert "1234/0/0" in after[4]
    if width >= 200:
        assert "usb-SEGGER_J-Link_001050123451-if00" in after[3]
        assert "imei-3504577900" in after[2]  # the device id, from 100 columns on
    assert all(len(line) <= width for line in after)
