"""Nothing that changes a device is sent before validation is complete.

Every device-changing command runs against a simulated device behind a recording transport
(`rec://<url>`); with an input that fails validation the recording holds no request that
changes the device (native BEGIN/DATA/COMMIT/DELETE/KEYGEN, AT%CMNG=0/3, AT%KEYGEN, +CFUN
changes, Zephyr `cred add/del/buf`), and the device lists the same slots as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import provision.urls
from provision.errors import ExitCode
from provision.link import messages as m
from provision.link.framing import FrameDecoder

_RECORDINGS: list[bytearray] = []


class Recording:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.sent = bytearray()
        _RECORDINGS.append(self.sent)
        if hasattr(inner, "clock"):
            self.clock = inner.clock

    def write(self, data: bytes) -> None:
        self.sent += data
        self.inner.write(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        return self.inner.read(max_bytes, timeout)

    def close(self) -> None:
        self.inner.close()


def open_recording(url: str, baud: int | None = None) -> Recording:
    return Recording(provision.urls.open_url(url.removeprefix("rec://"), baud))


@pytest.fixture(autouse=True)
def rec_scheme(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(provision.urls.SCHEMES, "rec", f"{__name__}:open_recording")
    _RECORDINGS.clear()
    yield


_CHANGING_NATIVE = (m.Begin, m.Data, m.Commit, m.Delete, m.Keygen)
_CHANGING_TEXT = (b"AT%CMNG=0", b"AT%CMNG=3", b"AT%KEYGEN", b"AT+CFUN=", b"cred add", b"cred del")


def changing_requests(dialect: str) -> list[str]:
    found: list[str] = []
    for sent in _RECORDINGS:
        if dialect == "native":
            for body in FrameDecoder(64 * 1024).feed(bytes(sent) + b"\x00"):
                if isinstance(body, bytes | bytearray):
                    try:
                        msg = m.decode(bytes(body)).message
                    except Exception:
                        continue
                    if isinstance(msg, _CHANGING_NATIVE):
                        found.append(type(msg).__name__)
        else:
            found += [c.decode() for c in _CHANGING_TEXT if c in sent]
    return found


def _slots(cli, port: str) -> list:
    r = cli(["device", "list", "--port", port, "--json", "--no-read"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["slots"]


@pytest.fixture
def material(cli, tmp_path: Path) -> dict[str, Path]:
    assert cli(["pki", "init-ca", "-o", tmp_path / "ca"]).exit_code == 0
    r = cli(["pki", "issue", "client", "--ca", tmp_path / "ca", "--device-id", "d1",
             "-o", tmp_path / "dev"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert cli(["pki", "init-ca", "-o", tmp_path / "other", "--cn", "Other"]).exit_code == 0
    (tmp_path / "not-a-dir").write_text("a file")
    big = tmp_path / "big.crt"
    big.write_bytes((tmp_path / "dev" / "d1.crt").read_bytes() * 8)
    return {
        "ca": tmp_path / "ca",
        "root": tmp_path / "ca" / "ca.crt",
        "other_root": tmp_path / "other" / "ca.crt",
        "cert": tmp_path / "dev" / "d1.crt",
        "key": tmp_path / "dev" / "d1.key",
        "big": big,
        "file": tmp_path / "not-a-dir",
    }


def _write_cases(p: dict[str, Path]) -> list[tuple[str, list, int]]:
    items = ["--tag", "8", "--root-ca", p["root"], "--client-cert", p["cert"],
             "--client-key", p["key"]]  # fmt: skip
    return [
        ("unknown target", [*items, "--target", "nrf19"], ExitCode.INPUT),
        # The client_cert does not chain to the root in the set: a check error.
        (
            "untrusted",
            [
                "--tag",
                "8",
                "--root-ca",
                p["other_root"],
                "--client-cert",
                p["cert"],
                "--client-key",
                p["key"],
            ],
            ExitCode.ERRORS,
        ),
        (
            "too large for the device",
            [
                "--tag",
                "8",
                "--root-ca",
                p["root"],
                "--client-cert",
                p["big"],
                "--client-key",
                p["key"],
                "--force",
            ],
            ExitCode.POLICY,
        ),
    ]


@pytest.mark.parametrize("dialect", ["native", "at-cmng", "zephyr-shell"])
def test_device_write_sends_nothing_that_changes_the_device_when_validation_fails(
    cli, tmp_path: Path, material: dict[str, Path], dialect: str
) -> None:
    port = f"rec://sim://{dialect}?flash={tmp_path / 'dev.flash'}"
    before = _slots(cli, port)
    for what, args, code in _write_cases(material):
        if dialect == "native" and what == "too large for the device":
            continue  # a native device takes 16 KB items
        _RECORDINGS.clear()
        r = cli(["device", "write", "--port", port, "--dialect", dialect, *args])
        assert r.exit_code == code, (what, r.output)
        assert changing_requests(dialect) == [], what
    assert _slots(cli, port) == before
    # The recording does see a write that passes validation.
    _RECORDINGS.clear()
    r = cli(
        [
            "device",
            "write",
            "--port",
            port,
            "--dialect",
            dialect,
            *_write_cases(material)[0][1][:-2],
        ]
    )
    assert r.exit_code == 0, r.output
    assert changing_requests(dialect)


@pytest.mark.parametrize("dialect", ["native", "at-cmng"])
def test_device_keygen_sends_nothing_that_changes_the_device_when_validation_fails(
    cli, tmp_path: Path, material: dict[str, Path], dialect: str
) -> None:
    port = f"rec://sim://{dialect}?flash={tmp_path / 'dev.flash'}"
    csr = tmp_path / "x.csr"
    cases = [
        # The folder of -o is a file: found only when the CSR is written, after the key.
        (["-o", material["file"] / "x.csr"], ExitCode.INPUT, "not a directory"),
        (["-o", csr, "--ca", material["ca"], "--days", "-3"], ExitCode.ERRORS, "--days"),
        (["-o", csr, "--ca", material["ca"], "--cert-out", csr], ExitCode.INPUT, "same file"),
        (["-o", csr, "--subject", "x" * 10_000], ExitCode.POLICY, "subject"),
    ]
    for args, code, words in cases:
        _RECORDINGS.clear()
        r = cli(["device", "keygen", "--port", port, "--dialect", dialect, "--tag", "50", *args])
        assert r.exit_code == code, (args[:2], r.output)
        assert words in r.output
        assert len(r.output.strip().splitlines()) == 1
        assert changing_requests(dialect) == [], args[:2]
        assert not csr.exists()
    assert _slots(cli, port) == []


def test_zephyr_keygen_is_refused_without_a_request(cli, tmp_path: Path) -> None:
    port = f"rec://sim://zephyr-shell?flash={tmp_path / 'dev.flash'}"
    r = cli(["device", "keygen", "--port", port, "--dialect", "zephyr-shell", "--tag", "5",
             "-o", tmp_path / "x.csr"])  # fmt: skip
    assert r.exit_code == ExitCode.POLICY, r.output
    assert changing_requests("zephyr-shell") == []


def test_device_delete_usage_mistakes_open_no_port(cli, tmp_path: Path) -> None:
    port = f"rec://sim://native?flash={tmp_path / 'dev.flash'}"
    for args in (["--all"], ["--all", "--tag", "3", "--yes"], []):
        r = cli(["device", "delete", "--port", port, *args])
        assert r.exit_code != 0, r.output
    assert _RECORDINGS == []


@pytest.mark.parametrize("dialect", ["native", "at-cmng", "zephyr-shell"])
def test_a_zero_record_bundle_is_refused_not_reported_as_written(
    cli, tmp_path: Path, dialect: str
) -> None:
    vector = Path(__file__).resolve().parents[1] / "vectors" / "bundles" / "empty.json"
    bundle = tmp_path / "empty.prvb"
    bundle.write_bytes(bytes.fromhex(json.loads(vector.read_text())["hex"]))
    port = f"rec://sim://{dialect}?flash={tmp_path / 'dev.flash'}"
    r = cli(["device", "write", "--port", port, "--dialect", dialect, bundle])
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "nothing to write" in r.output and "wrote" not in r.output
    assert changing_requests(dialect) == []
