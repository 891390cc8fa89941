"""The post-write mTLS proof: simulated devices handshake with `provision testserver`'s server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.errors import ExitCode, InputError
from provision.line import Line
from provision.pki.authority import create_root_ca, load_authority
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key
from provision.registry import Result, open_registry
from provision.tls.material import TLSMaterial
from provision.tls.server import ClientEvent, TestServer


def _run(cfg, **kw):  # type: ignore[no-untyped-def]
    outcomes: list = []
    summary = Line(cfg, operator="tester", emit=outcomes.append, **kw).run()
    return summary, outcomes


@pytest.fixture
def serve(ca_dir: Path) -> Iterator:
    """serve(client_roots=None, tls_version=None) → (server, events): a TLS server on
    127.0.0.1 whose certificate the station CA issued (so the devices' root anchors it)
    and which requires client certificates from `client_roots` (default: the station CA)."""
    ca = load_authority(
        (ca_dir / "ca.crt").read_bytes(),
        (ca_dir / "ca.key").read_bytes(),
        None,
        cert_source="ca.crt",
        key_source="ca.key",
    )
    key, cert = ca.issue_server(["localhost", "127.0.0.1"])
    servers: list[TestServer] = []

    def start(client_roots: tuple[bytes, ...] | None = None, tls_version: str | None = None):
        material = TLSMaterial(
            client_roots or (cert_pem(ca.cert),), cert_pem(cert), serialize_private_key(key)
        )
        events: list[ClientEvent] = []
        server = TestServer(material, tls_version=tls_version).start(events.append)
        servers.append(server)
        return server, events

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("native", {}),
        ("at-cmng", {}),
        ("zephyr-shell", {}),
        ("at-shell", {"cmd_buff_size": "4096"}),
    ],
)
def test_proof_accepted_is_recorded_with_the_negotiated_version(
    station, jig, serve, kind: str, options: dict[str, str]
) -> None:
    server, events = serve()
    cfg = station([jig(kind, **options)], dialect=kind, proof={"server": server.address})
    summary, outcomes = _run(cfg, limit=2)
    assert summary.counts == {"ok": 2}, outcomes
    with open_registry(cfg.registry) as reg:
        assert reg.verify().ok
        for o in outcomes:
            assert o.proof.result == "accepted" and o.proof.sec_tag == 42
            assert o.proof.version == "TLSv1.3"
            assert o.proof.accepted_as == f"CN={o.device_id}"
            line = json.loads(json.dumps(o.to_json()))
            assert line["proof"]["result"] == "accepted" and line["proof"]["version"] == "TLSv1.3"
            rec = reg.latest(o.device_id)
            assert rec.result is Result.OK
            assert rec.public_dict()["proof"] == line["proof"]
    # The server saw each device's own certificate.
    accepted = sorted(e.subject for e in events if e.accepted)
    assert accepted == sorted(f"CN={o.device_id}" for o in outcomes)


def test_proof_with_tls_1_2(station, jig, serve) -> None:
    server, _ = serve()
    cfg = station([jig()], proof={"server": server.address, "tls": "1.2"})
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"ok": 1}
    assert outcomes[0].proof.version == "TLSv1.2"


def test_server_requiring_another_ca_fails_the_device(station, jig, serve) -> None:
    other = create_root_ca("Some Other Root")
    server, events = serve(client_roots=(cert_pem(other.cert),))
    cfg = station([jig()], proof={"server": server.address})
    summary, outcomes = _run(cfg, limit=2)
    assert summary.counts == {"failed": 2}
    assert summary.failures == {"tls.client_cert_rejected": 2}
    with open_registry(cfg.registry) as reg:
        assert reg.verify().ok and reg.claims() == []
        for o in outcomes:
            assert o.error_code == "tls.client_cert_rejected"
            assert o.proof.result == "failed" and o.proof.failure == "client_cert_rejected"
            assert "client_cert_rejected" in o.message
            rec = reg.latest(o.device_id)
            # Failed, and its already signed certificate is accounted for.
            assert rec.result is Result.FAILED and rec.error_code == "tls.client_cert_rejected"
            assert rec.cert_serial == o.cert_serial and rec.sec_tags == ()
            assert rec.public_dict()["proof"]["failure"] == "client_cert_rejected"
    assert events and not any(e.accepted for e in events)


def test_failed_proof_cleans_the_device(station, serve, tmp_path: Path) -> None:
    import provision.device

    other = create_root_ca("Some Other Root")
    server, _ = serve(client_roots=(cert_pem(other.cert),))
    url = f"sim://native?seed=5&flash={tmp_path / 'dev.flash'}"
    cfg = station([url], proof={"server": server.address})
    summary, _ = _run(cfg, limit=1)
    assert summary.counts == {"failed": 1}
    with provision.device.open(url, dialect="native") as dev:
        assert [s for s in dev.list() if s.sec_tag == 42] == []


def test_nothing_listening_is_a_named_failure(station, jig, serve) -> None:
    server, _ = serve()
    address = server.address
    server.close()
    cfg = station([jig()], proof={"server": address, "timeout": 1.0})
    summary, outcomes = _run(cfg, limit=1)
    assert summary.failures == {"tls.connection_refused": 1}
    assert outcomes[0].proof.failure == "connection_refused"


# A target without the TLS_CHECK feature: what a real board or the C stub announces.
CANNOT = {"tls": "0"}


def test_device_that_cannot_prove_fails_by_default(station, jig, serve) -> None:
    server, events = serve()
    cfg = station([jig("native", **CANNOT)], proof={"server": server.address})
    summary, outcomes = _run(cfg, limit=1)
    assert summary.failures == {"tls.unsupported": 1}
    assert outcomes[0].proof.result == "unsupported"
    assert 'unsupported = "skip"' in outcomes[0].message
    assert events == []


def test_device_that_cannot_prove_passes_with_a_note_when_configured(station, jig, serve) -> None:
    server, _ = serve()
    proof = {"server": server.address, "unsupported": "skip"}
    cfg = station([jig("native", **CANNOT)], proof=proof)
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"ok": 1}
    o = outcomes[0]
    assert o.proof.result == "unsupported" and o.proof.failure == "unsupported"
    assert o.message.startswith("proof skipped: the device cannot run a TLS handshake")
    with open_registry(cfg.registry) as reg:
        rec = reg.latest(o.device_id)
        assert rec.result is Result.OK and rec.public_dict()["proof"]["result"] == "unsupported"


def test_no_proof_section_means_no_proof(station, jig) -> None:
    summary, outcomes = _run(station([jig()]), limit=1)
    assert summary.counts == {"ok": 1}
    assert outcomes[0].proof is None and outcomes[0].to_json()["proof"] is None
    with open_registry(station([jig()]).registry) as reg:
        assert reg.latest(outcomes[0].device_id).proof is None


@pytest.mark.parametrize(
    ("proof", "message"),
    [
        ({"tag": 42}, "needs server"),
        ({"server": "localhost"}, "not HOST:PORT"),
        ({"server": "localhost:70000"}, "out of range"),
        ({"server": "a b:1"}, "not HOST:PORT"),
        ({"server": "localhost:1", "tls": "1.1"}, "tls '1.1'"),
        ({"server": "localhost:1", "unsupported": "ignore"}, "unsupported 'ignore'"),
        ({"server": "localhost:1", "timeout": 0}, "timeout 0"),
        ({"server": "localhost:1", "tag": 43}, "tag 43 holds no client certificate"),
        ({"server": "localhost:1", "colour": 1}, "unknown .proof. setting"),
        ({"server": "localhost:1", "tag": "x"}, "bad .proof. value"),
        ("localhost:1", "must be a table"),
    ],
)
def test_bad_proof_settings_name_the_problem(station, jig, proof, message: str) -> None:
    with pytest.raises(InputError, match=message):
        station([jig()], proof=proof)


def test_line_run_cli_with_a_proof_section(cli, ca_dir: Path, jig, serve) -> None:
    good, _ = serve()
    other = create_root_ca("Some Other Root")
    bad, _ = serve(client_roots=(cert_pem(other.cert),))
    config = (
        'station = "st-cli"\nregistry = "reg.sqlite"\n[ca]\ncert = "ca.crt"\nkey = "ca.key"\n'
        '[proof]\nserver = "{server}"\ntls = "1.2"\n'
    )
    (ca_dir / "station.toml").write_text(config.format(server=good.address))
    result = cli(["line", "run", ca_dir / "station.toml", "-p", jig(), "-n", "1", "--json"])
    assert result.exit_code == 0, result.output
    device = json.loads(result.stdout.splitlines()[0])
    assert device["status"] == "ok" and device["proof"]["version"] == "TLSv1.2"

    (ca_dir / "station.toml").write_text(config.format(server=bad.address))
    result = cli(["line", "run", ca_dir / "station.toml", "-p", jig(), "-n", "1", "--json"])
    assert result.exit_code == ExitCode.DEVICE
    device, summary = (json.loads(line) for line in result.stdout.splitlines())
    assert device["status"] == "failed" and device["error_code"] == "tls.client_cert_rejected"
    assert summary["failures"] == {"tls.client_cert_rejected": 1}
    assert "tls.client_cert_rejected" in result.stderr  # the summary table


@pytest.mark.parametrize("kind", ["native", "at-cmng"])
def test_proof_with_a_device_generated_key(station, jig, serve, kind: str) -> None:
    # The key never left the device; the handshake proves it pairs with the certificate.
    server, events = serve()
    cfg = station([jig(kind)], dialect=kind, flow="device-keygen", proof={"server": server.address})
    summary, outcomes = _run(cfg, limit=1)
    assert summary.counts == {"ok": 1}, outcomes
    assert outcomes[0].proof.result == "accepted"
    assert [e.subject for e in events if e.accepted] == [f"CN={outcomes[0].device_id}"]
