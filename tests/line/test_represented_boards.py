"""A board provisioned before and presented again without its credentials (wiped, or
--force) is flagged on the line, and the station's `represented` policy decides: issue
another certificate (allow), refuse the board, or issue and mark the older certificate
superseded in the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import provision.device
from provision.errors import ExitCode
from provision.line import Line
from provision.registry import Result, open_registry


def _run(cfg, **kw):  # type: ignore[no-untyped-def]
    outcomes: list = []
    summary = Line(cfg, operator="tester", emit=outcomes.append, **kw).run()
    return summary, outcomes


def _wipe(url: str) -> None:
    with provision.device.open(url, dialect="native") as dev:
        dev.delete(None)
        assert dev.list() == []


@pytest.fixture
def board(tmp_path: Path) -> str:
    return f"sim://native?seed=31&flash={tmp_path / 'dev.flash'}"


def test_allow_issues_again_and_flags_it(station, board: str) -> None:
    cfg = station([board])
    first = _run(cfg, limit=1)[1][0]
    assert first.represented is None and first.to_json()["represented"] is None
    _wipe(board)
    summary, (second,) = _run(cfg, limit=1)
    assert summary.counts == {"ok": 1}
    assert second.to_json()["represented"] == {
        "action": "issued",
        "previous_serials": [first.cert_serial],
    }
    with open_registry(cfg.registry) as reg:
        in_service = reg.certificates_in_service(first.device_id)
        assert [r.cert_serial for r in in_service] == [first.cert_serial, second.cert_serial]
        assert reg.verify().ok and reg.claims() == []


def test_refuse_leaves_the_board_untouched_and_records_why(station, board: str) -> None:
    cfg = station([board], represented="refuse")
    first = _run(cfg, limit=1)[1][0]
    _wipe(board)
    summary, (second,) = _run(cfg, limit=1)
    assert summary.counts == {"failed": 1}
    assert second.error_code == "line.represented" and second.cert_serial is None
    assert first.cert_serial in second.message
    assert second.to_json()["represented"]["action"] == "refused"
    with provision.device.open(board, dialect="native") as dev:
        assert dev.list() == []  # nothing written: the board goes to rework as it is
    with open_registry(cfg.registry) as reg:
        history = reg.history(first.device_id)
        assert [(r.result, r.error_code, r.cert_serial) for r in history] == [
            (Result.OK, None, first.cert_serial),
            (Result.FAILED, "line.represented", None),
        ]
        assert reg.verify().ok and reg.claims() == []


def test_refuse_holds_against_force(station, board: str) -> None:
    cfg = station([board], represented="refuse")
    _run(cfg, limit=1)
    summary, (again,) = _run(cfg, limit=1, force=True)
    assert summary.counts == {"failed": 1} and again.error_code == "line.represented"


def test_supersede_marks_only_the_certificate_in_service(station, board: str) -> None:
    cfg = station([board], represented="supersede")
    first = _run(cfg, limit=1)[1][0]
    _wipe(board)
    second = _run(cfg, limit=1)[1][0]
    assert second.to_json()["represented"] == {
        "action": "superseded",
        "previous_serials": [first.cert_serial],
    }
    third = _run(cfg, limit=1, force=True)[1][0]  # --force: the board still held the second
    assert third.represented.previous_serials == (second.cert_serial,)
    with open_registry(cfg.registry) as reg:
        rows = reg.history(first.device_id)
        assert [r.supersedes for r in rows] == [(), (first.cert_serial,), (second.cert_serial,)]
        assert reg.certificates_in_service(first.device_id) == [rows[2]]
        assert reg.verify().ok and reg.claims() == []
        exported = list(reg.iter_provisioned())
    assert [r.cert_serial for r in exported] == [third.cert_serial]


def test_line_run_and_registry_show_report_it(cli, station, board: str, ca_dir: Path) -> None:
    (ca_dir / "station.toml").write_text(
        'station = "st-1"\nregistry = "registry.sqlite"\ndialect = "native"\n'
        'represented = "supersede"\n[ca]\ncert = "ca.crt"\nkey = "ca.key"\n'
    )
    args = ["line", "run", ca_dir / "station.toml", "-p", board, "-n", "1", "--no-live"]
    first = json.loads(cli(args).stdout.splitlines()[0])
    _wipe(board)
    result = cli(args)
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.splitlines()[0])
    assert line["represented"] == {
        "action": "superseded",
        "previous_serials": [first["cert_serial"]],
    }
    flag = f"device {first['device_id']} was provisioned before: certificate "
    assert flag + f"{first['cert_serial']} marked superseded" in result.stderr
    registry = ca_dir / "registry.sqlite"
    shown = cli(["registry", "show", first["device_id"], "-r", registry])
    # "ok (superseded by row 2)" in row 1's result cell, folded to the table's width
    assert shown.exit_code == 0 and "(superseded" in shown.stdout and "row 2)" in shown.stdout
    doc = json.loads(cli(["registry", "show", first["device_id"], "-r", registry, "--json"]).stdout)
    assert [r["superseded_by"] for r in doc["records"]] == [2, None]
    assert doc["records"][1]["supersedes"] == [first["cert_serial"]]
    assert cli(["registry", "verify", "-r", registry]).exit_code == 0


def test_unknown_policy_is_a_config_error(cli, ca_dir: Path) -> None:
    (ca_dir / "station.toml").write_text(
        'station = "st-1"\nrepresented = "revoke"\n[ca]\ncert = "ca.crt"\nkey = "ca.key"\n'
    )
    result = cli(["line", "run", ca_dir / "station.toml", "-p", "jig://x", "-n", "1"])
    assert result.exit_code == ExitCode.INPUT
    assert "represented 'revoke' is not one of: allow, refuse, supersede" in result.output
