"""`provision bundle` through the CLI and the library: happy paths and every bad input."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from provision import packing as bundle_io
from provision.bundle import format as fmt
from provision.bundle.spec import PackSources, SecretSource, TagSources, load_spec
from provision.errors import (
    BundleError,
    CheckFailed,
    ExitCode,
    InputError,
    OverwriteError,
    PolicyError,
)


def fails(result, code: int, *needles: str) -> str:
    """The CLI contract for bad input: the exit code, one line on stderr, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def only(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def pack_args(files, out: Path, *extra: object) -> list[object]:
    return [
        "bundle", "pack", "--tag", 42,
        "--root-ca", files.root_ca_dot_pem,
        "--client-cert", files.device_dot_pem,
        "--client-key", files.device_dot_key,
        "--device-id", "dev-0001", "--out", out, *extra,
    ]  # fmt: skip


def sources(files, **tag: object) -> PackSources:
    base = {
        "root_ca": (files.root_ca_dot_pem,),
        "client_cert": files.device_dot_pem,
        "client_key": files.device_dot_key,
    }
    base.update(tag)
    return PackSources((TagSources(42, **base),), device_id="dev-0001")


# --- pack: good ---------------------------------------------------------------------------


def test_pack_inspect_verify_unpack_round_trip(run, files, tmp_path: Path) -> None:
    out = tmp_path / "b.prvb"
    assert run(*pack_args(files, out)).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds a private key
    first = out.read_bytes()
    # Deterministic: packing again (another file) gives the same bytes.
    again = tmp_path / "again.prvb"
    assert run(*pack_args(files, again)).exit_code == 0
    assert again.read_bytes() == first

    result = run("bundle", "inspect", out, "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert [r["slot"] for r in report["records"]] == ["root_ca", "client_cert", "client_key"]
    assert report["records"][1]["certificates"][0]["common_name"] == "dev-0001"
    assert report["device_id"] == "dev-0001" and report["signed"] is False

    result = run("bundle", "verify", out)
    assert result.exit_code == 0 and "signature: not signed" in result.stdout

    unpacked = tmp_path / "unpacked"
    assert run("bundle", "unpack", out, "--dir", unpacked).exit_code == 0
    # PEM inputs, default encoding compact: DER records.
    assert only(unpacked) == {
        "tag42-root_ca.der",
        "tag42-client_cert.der",
        "tag42-client_key.der",
        "bundle.toml",
    }
    assert stat.S_IMODE((unpacked / "tag42-client_key.der").stat().st_mode) == 0o600
    assert stat.S_IMODE((unpacked / "tag42-client_cert.der").stat().st_mode) == 0o644
    key_der = files.device_dot_key_dot_der.read_bytes()
    assert (unpacked / "tag42-client_key.der").read_bytes() == key_der
    assert (unpacked / "tag42-root_ca.der").read_bytes() == files.root_ca_dot_der.read_bytes()
    repacked = tmp_path / "repacked.prvb"
    assert run("bundle", "pack", "--spec", unpacked / "bundle.toml", "-o", repacked).exit_code == 0
    assert repacked.read_bytes() == first


def test_input_order_and_encoding_choice(run, files, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--root-ca", files.root_ca_dot_pem, "--root-ca", files.other_root_dot_pem]
    swapped = ["--root-ca", files.other_root_dot_pem, "--root-ca", files.root_ca_dot_pem]
    common = ["bundle", "pack", "--tag", 1, "--encoding", "der"]
    assert run(*common, *args, "-o", a).exit_code == 0
    assert run(*common, *swapped, "-o", b).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    roots = fmt.decode(a.read_bytes()).credentials.roots(1)
    assert len(roots) == 2 and all(r.encoding.label == "der" for r in roots)
    # No secret in the bundle: an ordinary file mode.
    assert stat.S_IMODE(a.stat().st_mode) == 0o644


def test_der_inputs_packed_as_pem(run, files, tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run(
        "bundle", "pack", "--tag", 3, "--root-ca", files.root_ca_dot_der,
        "--client-cert", files.device_dot_der, "--client-key", files.device_dot_key_dot_der,
        "--encoding", "pem", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    slots = fmt.decode(out.read_bytes()).credentials.slots
    assert [s.encoding.label for s in slots] == ["pem", "pem", "pem"]
    assert slots[0].data == files.root_ca_dot_pem.read_bytes()


def test_encrypted_key_gets_flag_and_password_slot(run, files, tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run(
        "bundle", "pack", "--tag", 42, "--root-ca", files.root_ca_dot_pem,
        "--client-cert", files.device_dot_pem, "--client-key", files.device_encrypted_dot_key,
        "--key-password-env", "KEY_PW", "-o", out, env={"KEY_PW": "test-only-password"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    creds = fmt.decode(out.read_bytes()).credentials
    key = creds.get(42, fmt.SlotType.CLIENT_KEY)
    assert key is not None and key.flags == fmt.SlotFlags.ENCRYPTED
    password = creds.get(42, fmt.SlotType.KEY_PASSWORD)
    assert password is not None and password.data == b"test-only-password"
    # The password never shows up, not even as a digest.
    report = run("bundle", "inspect", out, "--json").stdout
    assert "test-only-password" not in report
    assert json.loads(report)["records"][-1] == {
        "index": 4 - 1,
        "sec_tag": 42,
        "slot": "key_password",
        "encoding": "raw",
        "flags": [],
        "size": 18,
        "sha256": None,
    }
    assert "test-only-password" not in run("bundle", "inspect", out).stdout


def test_password_prompt_when_allowed(run, files, tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run(
        "bundle", "pack", "--tag", 42, "--client-cert", files.device_dot_pem,
        "--client-key", files.device_encrypted_dot_key, "--root-ca", files.root_ca_dot_pem,
        "-o", out, input="test-only-password\n", env={"PROVISION_ALLOW_PIPED_PASSWORD": "1"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "test-only-password" not in result.stdout


def test_psk_from_hex_file_and_identity(run, files, tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run(
        "bundle", "pack", "--tag", 7, "--psk-hex-file", files.psk_dot_hex,
        "--psk-identity", "dev-0001-psk", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = json.loads(
        (Path(__file__).resolve().parents[1] / "vectors" / "bundles" / "psk.json").read_text()
    )
    assert out.read_bytes().hex() == expected["hex"]
    report = run("bundle", "inspect", out, "--json").stdout
    assert bytes(range(32)).hex() not in report
    assert json.loads(report)["records"][0]["sha256"] is None


def test_signed_pack_and_verify(run, files, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert run(*pack_args(files, out, "--sign-key", files.signer_dot_key)).exit_code == 0
    ok = run("bundle", "verify", out, "--pubkey", files.signer_dot_pub_dot_der, "--json")
    assert ok.exit_code == 0
    assert json.loads(ok.stdout)["signature"] == "valid"
    unchecked = run("bundle", "verify", out)
    assert unchecked.exit_code == 0
    assert "signature: present, not checked" in unchecked.stdout
    fails(
        run("bundle", "verify", out, "--signer-cert", files.root_ca_dot_pem),
        ExitCode.BUNDLE,
        str(out),
        "signature does not verify",
    )
    data = bytearray(out.read_bytes())
    data[-1] ^= 0x01
    bad = tmp_path / "bad-sig"
    bad.write_bytes(bytes(data))
    fails(
        run("bundle", "verify", bad, "--pubkey", files.signer_dot_pub_dot_der),
        ExitCode.BUNDLE,
        "signature does not verify",
    )
    with pytest.raises(BundleError, match="signature does not verify"):
        bundle_io.verify(bad, public_key=files.signer_dot_pub_dot_der)


def test_verify_with_key_on_unsigned_bundle(run, files, tmp_path: Path) -> None:
    out = tmp_path / "u"
    assert run(*pack_args(files, out)).exit_code == 0
    fails(
        run("bundle", "verify", out, "--pubkey", files.signer_dot_pub_dot_der),
        ExitCode.BUNDLE,
        "not signed",
    )


def test_verify_exit_codes_for_findings(run, files, tmp_path: Path) -> None:
    # client cert and key without a root: a warning (chain not verified).
    warn = tmp_path / "warn"
    result = run(
        "bundle", "pack", "--tag", 1, "--client-cert", files.device_dot_pem,
        "--client-key", files.device_dot_key, "-o", warn,
    )  # fmt: skip
    assert result.exit_code == 0 and "chain.no_root" in result.stdout
    assert run("bundle", "verify", warn).exit_code == 0
    assert run("bundle", "verify", warn, "--strict").exit_code == ExitCode.WARNINGS
    # An expired client certificate packed with --force: verify reports errors.
    err = tmp_path / "err"
    result = run(
        "bundle", "pack", "--tag", 1, "--root-ca", files.expired_root_dot_pem,
        "--client-cert", files.expired_dot_pem, "--client-key", files.expired_dot_key,
        "--force", "-o", err,
    )  # fmt: skip
    assert result.exit_code == 0
    result = run("bundle", "verify", err, "--json")
    assert result.exit_code == ExitCode.ERRORS
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert "cert.expired" in codes


# --- pack: bad inputs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "code", "needles"),
    [
        ("missing", ExitCode.INPUT, ["nope.pem", "not found"]),
        ("not_pem_der", ExitCode.INPUT, ["junk.pem", "not a PEM or DER certificate"]),
        ("truncated_pem", ExitCode.INPUT, ["cut.pem", "PEM"]),
        ("der_garbage", ExitCode.INPUT, ["garbage.der", "not a PEM or DER certificate"]),
        ("key_not_key", ExitCode.INPUT, ["junk.key", "not a private key"]),
        ("wrong_password", ExitCode.INPUT, ["device-encrypted.key", "wrong password"]),
        ("no_password", ExitCode.INPUT, ["device-encrypted.key", "--key-password-file"]),
        ("mismatch", ExitCode.ERRORS, ["check failed", "does not belong"]),
        ("expired", ExitCode.ERRORS, ["check failed", "expired"]),
        ("non_ca_root", ExitCode.ERRORS, ["check failed", "CA"]),
        ("oversized", ExitCode.POLICY, ["chain.pem", "client_cert is", "16384"]),
        ("huge_file", ExitCode.POLICY, ["huge.pem", "at most 65536"]),
        ("tag_range", ExitCode.INPUT, ["sec_tag 2147483648 out of range"]),
        ("tag_negative", ExitCode.INPUT, ["sec_tag -1 out of range"]),
        ("psk_not_hex", ExitCode.INPUT, ["psk.bad", "not hex"]),
        ("bad_device_id", ExitCode.INPUT, ["device id", "not valid"]),
        ("exists", ExitCode.EXISTS, ["exists", "--force"]),
        ("spec_and_items", ExitCode.INPUT, ["--spec cannot be combined"]),
        ("nothing", ExitCode.INPUT, ["--tag is required"]),
        ("duplicate", ExitCode.INPUT, ["duplicate slot client_cert", "--client-cert"]),
    ],
)
def test_pack_bad_input(run, files, tmp_path: Path, setup: str, code: int, needles) -> None:
    out = tmp_path / "out" / "b.prvb"
    out.parent.mkdir()
    d = files.dir
    args = pack_args(files, out)

    def swap(option: str, path: Path) -> list[object]:
        i = args.index(option)
        return [*args[: i + 1], path, *args[i + 2 :]]

    if setup == "missing":
        args = swap("--root-ca", d / "nope.pem")
    elif setup == "not_pem_der":
        (d / "junk.pem").write_text("hello, I am not a certificate\n")
        args = swap("--root-ca", d / "junk.pem")
    elif setup == "truncated_pem":
        text = files.device_dot_pem.read_bytes()
        (d / "cut.pem").write_bytes(text[: len(text) // 2])
        args = swap("--client-cert", d / "cut.pem")
    elif setup == "der_garbage":
        (d / "garbage.der").write_bytes(b"\x30\x82\x01\x00" + os.urandom(64))
        args = swap("--root-ca", d / "garbage.der")
    elif setup == "key_not_key":
        (d / "junk.key").write_bytes(b"\x00\x01 not a key")
        args = swap("--client-key", d / "junk.key")
    elif setup == "wrong_password":
        (d / "wrong.pw").write_text("not-the-password\n")
        args = [*swap("--client-key", files.device_encrypted_dot_key), "--key-password-file",
                d / "wrong.pw"]  # fmt: skip
    elif setup == "no_password":
        args = swap("--client-key", files.device_encrypted_dot_key)
    elif setup == "mismatch":
        args = swap("--client-key", files.other_dot_key)
    elif setup == "expired":
        args = swap("--client-cert", files.expired_dot_pem)
        args = [*args[: args.index("--client-key") + 1], files.expired_dot_key,
                *args[args.index("--client-key") + 2 :]]  # fmt: skip
    elif setup == "non_ca_root":
        args = swap("--root-ca", files.leaf_as_root_dot_pem)
    elif setup == "oversized":
        chain = files.device_dot_pem.read_bytes() + files.root_ca_dot_pem.read_bytes() * 28
        (d / "chain.pem").write_bytes(chain)
        args = swap("--client-cert", d / "chain.pem")
    elif setup == "huge_file":
        (d / "huge.pem").write_bytes(files.root_ca_dot_pem.read_bytes() * 120)
        args = swap("--root-ca", d / "huge.pem")
    elif setup == "tag_range":
        args = swap("--tag", 2**31)
    elif setup == "tag_negative":
        args = swap("--tag", -1)
    elif setup == "psk_not_hex":
        (d / "psk.bad").write_text("zz-secret-zz\n")
        args = [*args, "--psk-hex-file", d / "psk.bad"]
    elif setup == "bad_device_id":
        args = swap("--device-id", "bad id!")
    elif setup == "exists":
        out.write_bytes(b"keep me")
    elif setup == "spec_and_items":
        args = [*args, "--spec", d / "x.toml"]
    elif setup == "duplicate":
        args = [*args, "--client-cert", files.device_dot_der]
    elif setup == "nothing":
        args = ["bundle", "pack", "--root-ca", files.root_ca_dot_pem, "-o", out]
    result = run(*args)
    line = fails(result, code, *needles)
    assert "zz-secret-zz" not in line and "test-only-password" not in line
    if setup == "exists":
        assert out.read_bytes() == b"keep me"
    else:
        assert only(out.parent) == set(), "nothing may be left behind"


def test_library_raises_the_same_errors(files, tmp_path: Path) -> None:
    out = tmp_path / "b"
    with pytest.raises(InputError, match=r"nope\.pem"):
        bundle_io.pack(sources(files, root_ca=(files.dir / "nope.pem",)), out)
    with pytest.raises(CheckFailed, match="does not belong"):
        bundle_io.pack(sources(files, client_key=files.other_dot_key), out)
    pw = SecretSource(file=files.device_encrypted_dot_pw)
    bundle_io.pack(sources(files, client_key=files.device_encrypted_dot_key, key_password=pw), out)
    with pytest.raises(OverwriteError):
        bundle_io.pack(sources(files), out)
    with pytest.raises(PolicyError, match="at most 65536"):
        (files.dir / "huge.pem").write_bytes(b"x" * 70000)
        bundle_io.pack(sources(files, root_ca=(files.dir / "huge.pem",)), tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_check_errors_can_be_forced(run, files, tmp_path: Path) -> None:
    out = tmp_path / "b"
    args = pack_args(files, out)
    args[args.index("--client-key") + 1] = files.other_dot_key
    assert run(*args, "--force").exit_code == 0
    assert out.exists()


# --- spec files ---------------------------------------------------------------------------

SPEC = """
device_id = "dev-0001"
encoding = "der"

[sec_tag.42]
root_ca = "root-ca.pem"
client_cert = "device.pem"
client_key = "device.key"
"""


def test_spec_pack_matches_command_line(run, files, tmp_path: Path) -> None:
    spec = files.dir / "device.toml"
    spec.write_text(SPEC)
    a, b = tmp_path / "a", tmp_path / "b"
    assert run("bundle", "pack", "--spec", spec, "-o", a).exit_code == 0
    assert run(*pack_args(files, b, "--encoding", "der")).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    # --device-id overrides the spec (one spec, many devices on a line)
    c = tmp_path / "c"
    result = run("bundle", "pack", "--spec", spec, "-o", c, "--device-id", "dev-0002")
    assert result.exit_code == 0, result.output
    assert fmt.decode(c.read_bytes()).credentials.device_id == "dev-0002"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[sec_tag.42]\nroot_cert = 'root-ca.pem'\n", ["[sec_tag.42]", "unknown slot name"]),
        (
            "[sec_tag.42]\nroot_ca = 'root-ca.pem'\nroot-ca = 'other-root.pem'\n",
            ["duplicate slot root_ca"],
        ),
        ("[sec_tag.2147483648]\nroot_ca = 'root-ca.pem'\n", ["out of range"]),
        ("[sec_tag.abc]\nroot_ca = 'root-ca.pem'\n", ["whole number"]),
        ("[sec_tag.1]\nkey_password = 'hunter2'\n", ["secrets are never written"]),
        ("[sec_tag.1]\n", ["no slots"]),
        ("device_id = 'x'\n", ["no [sec_tag.N] tables"]),
        ("colour = 'blue'\n[sec_tag.1]\nroot_ca = 'root-ca.pem'\n", ["unknown key 'colour'"]),
        ("[sec_tag.1\nroot_ca = 1", ["not valid TOML"]),
        ("encoding = 'base64'\n[sec_tag.1]\nroot_ca = 'root-ca.pem'\n", ["unknown encoding"]),
        ("[sec_tag.1]\nroot_ca = 'missing.pem'\n", ["missing.pem", "not found"]),
    ],
)
def test_bad_spec(run, files, tmp_path: Path, text: str, needles) -> None:
    spec = files.dir / "bad.toml"
    spec.write_text(text)
    out = tmp_path / "b"
    line = fails(run("bundle", "pack", "--spec", spec, "-o", out), ExitCode.INPUT, *needles)
    assert "hunter2" not in line
    assert not out.exists()
    with pytest.raises(InputError):
        bundle_io.read_credentials(load_spec(spec))


def test_spec_paths_are_relative_to_the_spec(run, files, tmp_path: Path, monkeypatch) -> None:
    sub = files.dir / "specs"
    sub.mkdir()
    (sub / "s.toml").write_text(
        "[sec_tag.5]\nroot_ca = ['../root-ca.pem', '../other-root.pem']\n"
        "psk = { hex_file = '../psk.hex' }\npsk_identity = { file = '../id.txt' }\n"
    )
    (files.dir / "id.txt").write_text("ident\n")
    out = tmp_path / "b"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert run("bundle", "pack", "--spec", sub / "s.toml", "-o", out).exit_code == 0
    creds = fmt.decode(out.read_bytes()).credentials
    assert [s.type.label for s in creds] == ["root_ca", "root_ca", "psk", "psk_identity"]
    assert creds.get(5, fmt.SlotType.PSK_IDENTITY).data == b"ident"


# --- bad bundles --------------------------------------------------------------------------


@pytest.fixture
def good_bundle(run, files, tmp_path: Path) -> Path:
    out = tmp_path / "good.prvb"
    assert run(*pack_args(files, out)).exit_code == 0
    return out


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda b: b"PRVX" + b[4:], "bad magic"),
        (lambda b: b[:4] + b"\x07" + b[5:], "unsupported bundle format version 7"),
        (lambda b: b[:40] + bytes([b[40] ^ 0x55]) + b[41:], "CRC32 mismatch"),
        (lambda b: b[:-20], "truncated bundle"),
        (lambda b: b + b"\x00\x00", "2 trailing bytes"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "SHA-256 mismatch"),
        (lambda b: b"", "bad magic"),
    ],
)
@pytest.mark.parametrize("command", ["inspect", "verify", "unpack"])
def test_bad_bundles(run, good_bundle: Path, tmp_path: Path, mutate, needle, command) -> None:
    bad = tmp_path / "bad.prvb"
    bad.write_bytes(mutate(good_bundle.read_bytes()))
    extra = ["--dir", tmp_path / "un"] if command == "unpack" else []
    fails(run("bundle", command, bad, *extra), ExitCode.BUNDLE, str(bad), needle)
    assert not (tmp_path / "un").exists()
    with pytest.raises(BundleError, match=needle):
        bundle_io.read_bundle(bad)


def test_missing_bundle_file(run, tmp_path: Path) -> None:
    fails(run("bundle", "inspect", tmp_path / "none.prvb"), ExitCode.INPUT, "none.prvb")


def test_unpack_refuses_to_overwrite(run, good_bundle: Path, tmp_path: Path) -> None:
    d = tmp_path / "un"
    d.mkdir()
    (d / "tag42-client_key.der").write_bytes(b"mine")
    fails(run("bundle", "unpack", good_bundle, "--dir", d), ExitCode.EXISTS, "--force")
    assert only(d) == {"tag42-client_key.der"}
    assert (d / "tag42-client_key.der").read_bytes() == b"mine"
    assert run("bundle", "unpack", good_bundle, "--dir", d, "--force").exit_code == 0
    assert (d / "tag42-client_key.der").read_bytes() != b"mine"
    assert len(only(d)) == 4


def test_json_outputs(run, files, tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run(*pack_args(files, out, "--json"))
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["file"] == str(out) and report["items"] == 3
    assert report["size"] == out.stat().st_size and report["key_id"] is None
    assert report["digest"] == out.read_bytes()[-32:].hex()
    assert files.device_dot_key.read_bytes().hex() not in result.stdout
    assert files.device_dot_key_dot_der.read_bytes().hex() not in result.stdout
    result = run("bundle", "unpack", out, "--dir", tmp_path / "u", "--json")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["files"]) == 4


def test_client_cert_chain(run, files, tmp_path: Path) -> None:
    chain = files.dir / "chain.pem"
    chain.write_bytes(files.device_dot_pem.read_bytes() + files.root_ca_dot_pem.read_bytes())
    args = pack_args(files, tmp_path / "b")
    args[args.index("--client-cert") + 1] = chain
    assert run(*args).exit_code == 0
    cert = fmt.decode((tmp_path / "b").read_bytes()).credentials.get(42, fmt.SlotType.CLIENT_CERT)
    assert cert is not None and cert.data.count(b"BEGIN CERTIFICATE") == 2
    out = tmp_path / "der"
    args[args.index("--out") + 1] = out
    fails(run(*args, "--encoding", "der"), ExitCode.INPUT, "chain.pem", "2 certificates")
    assert not out.exists()


def test_verify_with_unreadable_key_file(run, files, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert run(*pack_args(files, out, "--sign-key", files.signer_dot_key)).exit_code == 0
    junk = files.dir / "junk.pub"
    junk.write_bytes(b"\x01\x02 nothing")
    fails(run("bundle", "verify", out, "--pubkey", junk), ExitCode.INPUT, "junk.pub")
    fails(
        run("bundle", "verify", out, "--pubkey", files.dir / "gone.pub"),
        ExitCode.INPUT,
        "gone.pub",
    )


def test_oversized_bundle_file(run, tmp_path: Path) -> None:
    big = tmp_path / "big.prvb"
    big.write_bytes(b"PRVB\x01" + bytes(bundle_io.MAX_BUNDLE_SIZE))
    fails(run("bundle", "inspect", big), ExitCode.BUNDLE, "big.prvb", "larger than any bundle")


def test_inspect_table_shows_bundle_text_literally(run, tmp_path: Path) -> None:
    """An identity from a bundle is data: no rich markup, no terminal escapes."""
    creds = fmt.CredentialSet.of(
        [fmt.Slot(9, fmt.SlotType.PSK_IDENTITY, fmt.Encoding.RAW, b"[red]id\x1b[2J")],
        device_id="[bold]dev",
    )
    path = tmp_path / "b.prvb"
    path.write_bytes(fmt.encode(creds))
    result = run("bundle", "inspect", path)
    assert result.exit_code == 0
    assert "[red]id" in result.stdout and "\\x1b" in result.stdout
    assert "device id [bold]dev" in result.stdout
    assert "\x1b" not in result.stdout


def test_same_root_twice_is_refused(run, files, tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run(
        "bundle", "pack", "--tag", 1, "--root-ca", files.root_ca_dot_pem,
        "--root-ca", files.root_ca_dot_der, "--encoding", "der", "-o", out,
    )  # fmt: skip
    fails(result, ExitCode.INPUT, "root-ca.der", "duplicate slot root_ca", "given twice")
    assert not out.exists()


def test_unpack_names_identical_roots_apart(run, tmp_path: Path) -> None:
    """A bundle from elsewhere may hold the same root twice; unpack keeps both."""
    root = fmt.Slot(1, fmt.SlotType.ROOT_CA, fmt.Encoding.DER, b"same")
    path = tmp_path / "b.prvb"
    path.write_bytes(fmt.encode(fmt.CredentialSet.of([root, root])))
    assert run("bundle", "unpack", path, "--dir", tmp_path / "u").exit_code == 0
    assert {"tag1-root_ca-0.der", "tag1-root_ca-1.der"} <= only(tmp_path / "u")
