"""Station config: TOML in, checked StationConfig out, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import InputError
from provision.line.config import dialect_names, expand_ports, load_config

GOOD = """
station = "line1-st3"
registry = "reg/line.sqlite"
dialect = "at-cmng"
ports = ["/dev/ttyFAKE*", "sim://native?seed=1"]
flow = "device-keygen"

[ca]
cert = "ca.crt"
key = "pkcs11:token=factory;object=ca?pin-source=file:/run/pin"

[profile]
key_type = "p384"
days = 30
subject = "O=Acme,CN={device_id}"

[[sec_tags]]
sec_tag = 42
client = true
roots = ["server-root.pem"]

[[sec_tags]]
sec_tag = 43
roots = "other-root.pem"
"""


def test_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "station.toml").write_text(GOOD)
    cfg = load_config(tmp_path / "station.toml")
    assert cfg.station == "line1-st3"
    assert cfg.registry == str(tmp_path / "reg" / "line.sqlite")
    assert cfg.ca_cert == tmp_path / "ca.crt"
    assert cfg.ca_key.startswith("pkcs11:token=factory")
    assert cfg.flow == "device-keygen"
    assert cfg.subject_template.name("d-1").rfc4514_string() == "CN=d-1,O=Acme"
    assert cfg.client_tag == 42
    assert cfg.layout[1].roots == (tmp_path / "other-root.pem",)
    assert cfg.days == 30 and cfg.key_type == "p384"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[ca]", "[ca]\npassword = 'x'"), "secrets do not belong"),
        (('flow = "device-keygen"', 'flow = "teleport"'), "flow 'teleport'"),
        (('subject = "O=Acme,CN={device_id}"', 'subject = "CN={serial}"'), "needs .device_id"),
        (('subject = "O=Acme,CN={device_id}"', 'subject = "O=,CN={device_id}"'), "O is empty"),
        (('subject = "O=Acme,CN={device_id}"', 'subject = "XX=1,CN={device_id}"'), "RFC 4514"),
        (("sec_tag = 43", "sec_tag = 43\nclient = true"), "exactly one tag"),
        (("sec_tag = 43", "sec_tag = 42"), "listed twice"),
        (('station = "line1-st3"', 'station = "line 1"'), "station:"),
        (('dialect = "at-cmng"', 'dialect = "at-cmng"\ncolour = 1'), "unknown setting"),
        (("days = 30", "days = 0"), "days 0"),
    ],
)
def test_bad_configs_name_the_problem(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    (tmp_path / "station.toml").write_text(GOOD.replace(*change, 1))
    with pytest.raises(InputError, match=message):
        load_config(tmp_path / "station.toml")


def test_unreadable_configs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("station = ")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_port_globs_expand_and_urls_pass_through(tmp_path: Path) -> None:
    for name in ("ttyFAKE1", "ttyFAKE0", "other"):
        (tmp_path / name).touch()
    ports = expand_ports((str(tmp_path / "ttyFAKE*"), "jig://a", str(tmp_path / "ttyFAKE0")))
    assert ports == [str(tmp_path / "ttyFAKE0"), str(tmp_path / "ttyFAKE1"), "jig://a"]
    with pytest.raises(InputError, match="no port matches"):
        expand_ports((str(tmp_path / "ttyNONE*"),))
    with pytest.raises(InputError, match="no ports"):
        expand_ports(())


def test_every_registered_dialect_may_be_selected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import provision.dialects

    assert set(dialect_names()) == {"auto", *provision.dialects.DIALECTS}
    for name in ("at-shell", *provision.dialects.DIALECTS, "auto"):
        (tmp_path / "station.toml").write_text(GOOD.replace('"at-cmng"', f'"{name}"', 1))
        assert load_config(tmp_path / "station.toml").dialect == name
    # The list is the device registry's, not a copy: a dialect added there is accepted here.
    monkeypatch.setitem(provision.dialects.DIALECTS, "acme-shell", "acme.shell:Session")
    (tmp_path / "station.toml").write_text(GOOD.replace('"at-cmng"', '"acme-shell"', 1))
    assert load_config(tmp_path / "station.toml").dialect == "acme-shell"
    monkeypatch.delitem(provision.dialects.DIALECTS, "acme-shell")
    with pytest.raises(InputError, match="dialect 'acme-shell' is not one of: auto, native"):
        load_config(tmp_path / "station.toml")
