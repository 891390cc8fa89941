"""The line against simulated devices: parallel ports, registry, idempotence, failures, Ctrl-C."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509

import provision.device
from provision.bundle.model import SlotType
from provision.line import Line, Status, simulate
from provision.line.issuer import Issuer
from provision.line.simulate import start_jigs
from provision.registry import Result, open_registry


def _run(cfg, **kw) -> tuple[object, list]:
    outcomes: list = []
    summary = Line(cfg, operator="tester", emit=outcomes.append, **kw).run()
    return summary, outcomes


def test_three_ports_provision_distinct_devices_and_record_them(station, jig, ca_dir) -> None:
    cfg = station([jig(), jig(), jig()])
    summary, outcomes = _run(cfg, limit=12)
    assert summary.counts == {"ok": 12}
    assert {o.port for o in outcomes} == set(cfg.ports)
    ids = [o.device_id for o in outcomes]
    assert len(set(ids)) == 12
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    with open_registry(cfg.registry) as reg:
        assert reg.verify().ok and reg.count() == 12 and reg.claims() == []
        for device_id in ids:
            rec = reg.latest(device_id)
            assert rec.result is Result.OK and rec.station == "st-1" and rec.operator == "tester"
            assert rec.sec_tags == (42,)
            cert = x509.load_pem_x509_certificate(rec.cert_pem.encode())
            cert.verify_directly_issued_by(ca)
            assert cert.subject.rfc4514_string() == f"CN={device_id}"
            assert f"{cert.serial_number:x}" == rec.cert_serial


class _KeyWatcher(Issuer):
    """Keeps every client_key the station makes, to look for it where it must not be."""

    keys: list[bytes]

    def issue_with_key(self, device_id, serial=None):  # type: ignore[no-untyped-def]
        issued = super().issue_with_key(device_id, serial)
        self.keys.append(issued.credentials.get(42, SlotType.CLIENT_KEY).data)
        return issued


def test_no_private_key_reaches_registry_or_output(station, jig, tmp_path: Path) -> None:
    cfg = station([jig()])
    issuer = _KeyWatcher(cfg)
    issuer.keys = []
    summary, outcomes = _run(cfg, limit=3, issuer=issuer)
    assert summary.counts == {"ok": 3} and len(issuer.keys) == 3
    out = tmp_path / "export.json"
    with open_registry(cfg.registry) as reg:
        from provision.registry.export import export_to

        export_to(reg.iter_provisioned(), "json", out, force=False)
    stored = (
        b"".join(p.read_bytes() for p in Path(cfg.registry).parent.glob("registry.sqlite*"))
        + out.read_bytes()
        + repr([o.to_json() for o in outcomes]).encode()
    )
    assert b"PRIVATE KEY" not in stored
    for key in issuer.keys:
        assert key not in stored
        assert base64.b64encode(key)[:40] not in stored


def test_device_already_done_is_skipped_unless_forced(station, tmp_path: Path) -> None:
    url = f"sim://native?seed=11&flash={tmp_path / 'dev.flash'}"
    cfg = station([url])
    assert _run(cfg, limit=1)[0].counts == {"ok": 1}
    assert _run(cfg, limit=1)[0].counts == {"skipped": 1}
    summary, outcomes = _run(cfg, limit=1, force=True)
    assert summary.counts == {"ok": 1}
    with open_registry(cfg.registry) as reg:
        history = reg.history(outcomes[0].device_id)
    assert [r.result for r in history] == [Result.OK, Result.OK]
    assert history[0].cert_serial != history[1].cert_serial


def test_device_whose_slots_changed_is_provisioned_again(station, tmp_path: Path) -> None:
    url = f"sim://native?seed=12&flash={tmp_path / 'dev.flash'}"
    cfg = station([url])
    assert _run(cfg, limit=1)[0].counts == {"ok": 1}
    with provision.device.open(url, dialect="native") as dev:
        dev.delete(42, SlotType.CLIENT_CERT)
    assert _run(cfg, limit=1)[0].counts == {"ok": 1}
    with provision.device.open(url, dialect="native") as dev:
        kinds = {s.type for s in dev.list() if s.sec_tag == 42}
    assert kinds == {SlotType.ROOT_CA, SlotType.CLIENT_CERT, SlotType.CLIENT_KEY}


def test_device_that_failed_midway_is_retried_cleanly(station, tmp_path: Path) -> None:
    flash = tmp_path / "dev.flash"
    # The board hangs halfway through the transfer (a bad contact)...
    broken = station([f"sim://native?seed=13&flash={flash}&silent_after=700"])
    summary, outcomes = _run(broken, limit=1)
    assert summary.counts == {"failed": 1}
    failed_code = outcomes[0].error_code
    assert failed_code.startswith("link")
    # ...and is re-seated: the same device, now answering.
    cfg = station([f"sim://native?seed=13&flash={flash}"])
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"ok": 1}
    with open_registry(cfg.registry) as reg:
        history = reg.history(outcomes[0].device_id)
        assert [r.result for r in history] == [Result.FAILED, Result.OK]
        assert history[0].error_code == failed_code
        # The certificate signed for the failed attempt is accounted for too.
        assert history[0].cert_serial and history[0].cert_serial != history[1].cert_serial
        assert reg.verify().ok and reg.claims() == []


def test_a_device_that_stops_answering_at_its_listing_is_recorded_failed(
    station, tmp_path: Path
) -> None:
    """The listing runs while the claim commits: once the claim is won, a listing that
    failed is a failed attempt like any other (recorded, claim released)."""
    # The device answers the session's HELLO, then goes silent within the LIST.
    cfg = station(["sim://native?seed=21&silent_after=20"])
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"failed": 1}
    assert outcomes[0].error_code.startswith("link")
    with open_registry(cfg.registry) as reg:
        (row,) = reg.history(outcomes[0].device_id)
        assert row.result is Result.FAILED and row.error_code == outcomes[0].error_code
        assert reg.claims() == [] and reg.verify().ok


def test_a_stop_during_the_listing_gives_the_claim_back(station, jig, monkeypatch) -> None:
    from provision.transport.base import Interrupted

    def cut(self):  # type: ignore[no-untyped-def]
        raise Interrupted("interrupted by the operator")

    monkeypatch.setattr(provision.device.Device, "list", cut)
    cfg = station([jig()])
    _summary, outcomes = _run(cfg, limit=1)
    assert outcomes == []
    with open_registry(cfg.registry) as reg:
        assert reg.claims() == [] and reg.count() == 0


def test_device_held_by_another_station_is_left_alone(station, jig) -> None:
    port = jig()
    cfg = station([port])
    first = _run(cfg, limit=1)[1][0]
    # Look at the next board on this jig, and let station st-2 claim it first.
    with provision.device.open(port, dialect="native") as dev:
        dev_id = dev.info().device_id
    with open_registry(cfg.registry) as reg:
        reg.claim(dev_id, "st-2")
    # Closing the port swapped the board: put the one we looked at back on the jig.
    name = port.split("://", 1)[1].split("?")[0]
    simulate._jig_counters[name] -= 1
    _summary, outcomes = _run(cfg, limit=1)
    assert outcomes[0].device_id == dev_id != first.device_id
    assert outcomes[0].status is Status.BUSY
    assert "st-2" in outcomes[0].message
    with open_registry(cfg.registry) as reg:
        assert reg.history(dev_id) == []
        assert reg.claims() == [(dev_id, "st-2")]


def test_device_keygen_flow_keeps_the_key_on_the_device(station, jig, ca_dir) -> None:
    cfg = station([jig("at-cmng")], dialect="at-cmng", flow="device-keygen")
    summary, outcomes = _run(cfg, limit=2)
    assert summary.counts == {"ok": 2}
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    with open_registry(cfg.registry) as reg:
        for o in outcomes:
            cert = x509.load_pem_x509_certificate(reg.latest(o.device_id).cert_pem.encode())
            cert.verify_directly_issued_by(ca)
            assert cert.subject.rfc4514_string() == f"CN={o.device_id}"


class _Trigger(Issuer):
    """Calls `action` when the n-th device is being issued (an operator pressing Ctrl-C)."""

    def issue_with_key(self, device_id, serial=None):  # type: ignore[no-untyped-def]
        self.seen += 1
        if self.seen == self.at:
            self.action()
        return super().issue_with_key(device_id, serial)


def _line_with_trigger(cfg, at: int, what: str) -> Line:
    issuer = _Trigger(cfg)
    issuer.seen, issuer.at = 0, at
    line = Line(cfg, operator="tester", limit=50, issuer=issuer)
    issuer.action = getattr(line, what)
    return line


def test_abort_rolls_back_devices_in_flight_and_keeps_registry_consistent(station, jig) -> None:
    cfg = station([jig(), jig()])
    line = _line_with_trigger(cfg, at=3, what="abort")
    summary = line.run()
    assert summary.counts.get("rolled_back", 0) >= 1
    assert summary.counts.get("ok", 0) + summary.counts["rolled_back"] < 50
    with open_registry(cfg.registry) as reg:
        assert reg.verify().ok
        assert reg.claims() == []
        rolled = [r for r in reg.iter_records() if r.result is Result.ROLLED_BACK]
        assert rolled and all(r.error_code == "interrupted" for r in rolled)


def test_stop_finishes_devices_in_flight(station, jig) -> None:
    cfg = station([jig(), jig()])
    line = _line_with_trigger(cfg, at=3, what="stop")
    summary = line.run()
    assert set(summary.counts) == {"ok"}
    assert 3 <= summary.counts["ok"] <= 4  # the one being issued, and one on the other port
    with open_registry(cfg.registry) as reg:
        assert reg.verify().ok and reg.claims() == []


def test_pty_jigs_on_the_wall_clock(station) -> None:
    jigs = start_jigs(2, kind="native", baud=115200)
    try:
        cfg = station([j.path for j in jigs])
        summary, outcomes = _run(cfg, per_port=2)
    finally:
        for j in jigs:
            j.stop.set()
    assert summary.counts == {"ok": 4}
    assert len({o.device_id for o in outcomes}) == 4
    # 115200 baud, ~1.1 kB each way per device: the time is real, not virtual.
    assert all(o.seconds > 0.05 for o in outcomes)


def test_at_shell_station_provisions_devices(station, jig) -> None:
    # A shell built with a command buffer big enough for one AT%CMNG line per credential.
    cfg = station([jig("at-shell", cmd_buff_size="4096")], dialect="at-shell")
    summary, outcomes = _run(cfg, limit=2)
    assert summary.counts == {"ok": 2}
    with open_registry(cfg.registry) as reg:
        assert reg.verify().ok
        assert all(reg.latest(o.device_id).result is Result.OK for o in outcomes)


def test_at_shell_with_a_small_shell_buffer_fails_cleanly(station, jig) -> None:
    cfg = station([jig("at-shell")], dialect="at-shell")
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"failed": 1}
    assert "CONFIG_SHELL_CMD_BUFF_SIZE" in outcomes[0].message
    with open_registry(cfg.registry) as reg:
        rec = reg.latest(outcomes[0].device_id)
        # The certificate was signed before the write was refused: it is accounted for.
        assert rec.result is Result.FAILED and rec.cert_serial == outcomes[0].cert_serial
        assert reg.claims() == []


@pytest.mark.parametrize("bad", ["no-such-dialect"])
def test_unknown_dialect_is_refused_before_anything_runs(station, jig, bad: str) -> None:
    from provision.errors import InputError

    with pytest.raises(InputError, match="dialect"):
        station([jig()], dialect=bad)


class _SerialWatcher(Issuer):
    """Notes the serial the station hands the issuer for each device."""

    def issue_with_key(self, device_id, serial=None):  # type: ignore[no-untyped-def]
        self.serials[device_id] = serial
        return super().issue_with_key(device_id, serial)

    def issue_for_csr(self, device_id, csr_der, serial=None):  # type: ignore[no-untyped-def]
        self.serials[device_id] = serial
        return super().issue_for_csr(device_id, csr_der, serial)


@pytest.mark.parametrize(("kind", "flow"), [("native", "host-key"), ("at-cmng", "device-keygen")])
def test_certificates_carry_the_registry_allocated_serials(
    station, jig, kind: str, flow: str
) -> None:
    cfg = station([jig(kind)], dialect=kind, flow=flow)
    issuer = _SerialWatcher(cfg)
    issuer.serials = {}
    summary, outcomes = _run(cfg, limit=3, issuer=issuer)
    assert summary.counts == {"ok": 3}
    # The claim's serial: database counter in the bits above the 63 random ones.
    assert sorted(s >> 63 for s in issuer.serials.values()) == [1, 2, 3]
    with open_registry(cfg.registry) as reg:
        for o in outcomes:
            rec = reg.latest(o.device_id)
            cert = x509.load_pem_x509_certificate(rec.cert_pem.encode())
            assert cert.serial_number == issuer.serials[o.device_id]
            assert int(rec.cert_serial, 16) == cert.serial_number
            assert o.cert_serial == rec.cert_serial


def test_a_device_costs_two_registry_commits_claim_and_record(station, jig) -> None:
    """The serial comes with the claim: no commit of its own (one port: no group commit to
    share either)."""
    cfg = station([jig()])
    reg = open_registry(cfg.registry)
    before = reg.commits
    try:
        summary, outcomes = _run(cfg, limit=4, registry=reg)
        serials = [int(o.cert_serial, 16) >> 63 for o in outcomes]
    finally:
        reg.close()
    assert summary.counts == {"ok": 4}
    assert reg.commits - before == 2 * 4
    assert sorted(serials) == [1, 2, 3, 4]


@pytest.mark.parametrize(("kind", "flow"), [("native", "host-key"), ("at-cmng", "device-keygen")])
def test_subject_template_with_fixed_attributes(station, jig, kind: str, flow: str) -> None:
    cfg = station(
        [jig(kind)],
        dialect=kind,
        flow=flow,
        profile={"subject": r"C=NO,O=Acme\, Inc.,OU=Line 3,CN={device_id}"},
    )
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"ok": 1}, outcomes
    with open_registry(cfg.registry) as reg:
        cert = x509.load_pem_x509_certificate(reg.latest(outcomes[0].device_id).cert_pem.encode())
    # Written most significant first, as certificates list them (CN last).
    assert [(a.rfc4514_attribute_name, a.value) for a in cert.subject] == [
        ("C", "NO"),
        ("O", "Acme, Inc."),
        ("OU", "Line 3"),
        ("CN", outcomes[0].device_id),
    ]


def test_documented_subject_forms_reach_the_certificate(station, jig, tmp_path) -> None:
    """docs/factory-line.md: hex escapes, multi-valued RDNs (with the CN too), dotted OIDs,
    written order = certificate order; the template read from TOML as a user writes it."""
    (tmp_path / "station.toml").write_text(
        'station = "st-1"\nregistry = "r.sqlite"\n[ca]\ncert = "ca.crt"\nkey = "ca.key"\n'
        "[profile]\n"
        "subject = 'O=\\C3\\A6rlig\\, AS,OU=Line 3+L=Oslo,CN={device_id}+2.5.4.5=A1'\n"
    )
    from provision.line.config import load_config

    text = load_config(tmp_path / "station.toml").subject
    cfg = station([jig()], profile={"subject": text})
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"ok": 1}, outcomes
    with open_registry(cfg.registry) as reg:
        cert = x509.load_pem_x509_certificate(reg.latest(outcomes[0].device_id).cert_pem.encode())
    rdns = [{(a.oid.dotted_string, a.value) for a in rdn} for rdn in cert.subject.rdns]
    assert rdns == [
        {("2.5.4.10", "\u00e6rlig, AS")},
        {("2.5.4.11", "Line 3"), ("2.5.4.7", "Oslo")},
        {("2.5.4.3", outcomes[0].device_id), ("2.5.4.5", "A1")},
    ]


@pytest.mark.parametrize("kind", ["native", "at-cmng", "zephyr-shell"])
def test_host_key_flow_on_every_dialect(station, jig, kind: str) -> None:
    cfg = station([jig(kind), jig(kind)], dialect=kind)
    summary, outcomes = _run(cfg, limit=4)
    assert summary.counts == {"ok": 4}, outcomes
    with open_registry(cfg.registry) as reg:
        assert reg.verify().ok and reg.count() == 4


@pytest.mark.parametrize("kind", ["at-cmng", "zephyr-shell"])
def test_done_device_is_skipped_on_other_dialects(station, kind: str, tmp_path: Path) -> None:
    cfg = station([f"sim://{kind}?seed=21&flash={tmp_path / 'dev.flash'}"], dialect=kind)
    assert _run(cfg, limit=1)[0].counts == {"ok": 1}
    assert _run(cfg, limit=1)[0].counts == {"skipped": 1}


def test_device_keygen_flow_on_native_keeps_the_device_key(station, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from provision.sim.profile import profile
    from provision.sim.store import open_store

    flash = tmp_path / "dev.flash"
    url = f"sim://native?seed=31&flash={flash}"
    cfg = station([url], flow="device-keygen", profile={"subject": "O=Acme,CN={device_id}"})
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"ok": 1}, outcomes
    device_id = outcomes[0].device_id
    with open_registry(cfg.registry) as reg:
        rec = reg.latest(device_id)
    cert = x509.load_pem_x509_certificate(rec.cert_pem.encode())
    assert cert.subject.rfc4514_string() == f"CN={device_id},O=Acme"
    # The certificate's key is the one the device made and kept: read the simulated flash.
    stored = open_store(profile("default"), flash).entries()
    assert {slot for tag, slot in stored if tag == 42} == {
        SlotType.ROOT_CA,
        SlotType.CLIENT_CERT,
        SlotType.CLIENT_KEY,
    }
    device_key = load_pem_private_key(stored[(42, SlotType.CLIENT_KEY)], None)
    assert device_key.public_key() == cert.public_key()
    # A second run finds the device done: the key check passes on native too.
    assert _run(cfg, limit=1)[0].counts == {"skipped": 1}


@pytest.mark.parametrize("serial", [None, 0x1234_5678_9ABC])
def test_issuer_paths_give_a_matching_key_and_certificate(station, jig, ca_dir, serial) -> None:
    from cryptography.hazmat.primitives import serialization

    issuer = Issuer(station([jig()], profile={"subject": "O=Acme,CN={device_id}"}))
    issued = issuer.issue_with_key("dev-7", serial)
    cert_der = issued.credentials.get(42, SlotType.CLIENT_CERT).data
    key = serialization.load_der_private_key(
        issued.credentials.get(42, SlotType.CLIENT_KEY).data, None
    )
    cert = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    assert cert.public_bytes(serialization.Encoding.DER) == cert_der
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes()))
    assert cert.subject.rfc4514_string() == "CN=dev-7,O=Acme"
    assert issued.cert_serial == f"{cert.serial_number:x}"
    if serial is not None:
        assert cert.serial_number == serial


def test_fast_baud_switches_each_device_that_offers_rates(station, jig, monkeypatch) -> None:
    from provision.dialects.native import NativeSession

    switched: list[int | None] = []
    real = NativeSession.switch_baud

    def spy(self, rate):  # type: ignore[no-untyped-def]
        rate = real(self, rate)
        port = getattr(self.transport, "inner", self.transport)
        switched.append(port.baudrate)  # the port's own rate, not what a wrapper says
        return rate

    monkeypatch.setattr(NativeSession, "switch_baud", spy)
    fast, plain = jig(), jig("native", rates="")
    cfg = station([fast, plain], fast_baud="auto")
    summary, _ = _run(cfg, per_port=2)
    assert summary.counts == {"ok": 4}
    # Devices without rates are never asked (no LINE_RATE capability, no switch_baud call).
    assert switched and set(switched) == {921600}
    with open_registry(cfg.registry) as reg:
        assert reg.count() == 4 and reg.verify().ok


def test_a_row_that_cannot_be_written_rolls_the_device_back_at_the_opening_rate(
    station, tmp_path: Path, monkeypatch
) -> None:
    """With --fast-baud the device goes back to the opening rate while its row commits;
    done is reported only once the row is durable, and a row that fails leaves the
    device empty (rolled back over the still-open session) and the registry saying so."""
    from provision.errors import RegistryError
    from provision.registry.store import Registry

    real = Registry.record

    def refuse_ok_rows(self, entry, claim=None):  # type: ignore[no-untyped-def]
        if entry.result is Result.OK:
            raise RegistryError("registry unreachable")
        return real(self, entry, claim)

    monkeypatch.setattr(Registry, "record", refuse_ok_rows)
    url = f"sim://native?seed=31&flash={tmp_path / 'dev.flash'}"
    cfg = station([url], fast_baud="auto")
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"failed": 1}
    assert outcomes[0].error_code == "registry.error"
    with provision.device.open(url, dialect="native") as dev:
        assert dev.list() == []
    with open_registry(cfg.registry) as reg:
        (row,) = reg.history(outcomes[0].device_id)
        assert row.result is Result.FAILED and reg.claims() == []


def test_fast_baud_setting_is_checked(station, jig) -> None:
    from provision.errors import InputError

    with pytest.raises(InputError, match="fast_baud 'quick'"):
        station([jig()], fast_baud="quick")
