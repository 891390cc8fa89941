"""Every option or argument that names an input file, of every command (walked from the CLI's
own command tree), given something that is not a readable regular file: a character device
(/dev/zero: read to the end, it never ends), a FIFO with no writer (opened blocking, it never
opens), a directory, a missing file, a name too long for the file system.

Each is refused with exit 3 and one line naming the file; nothing in the world changes (no
file created, none removed, the simulated device's flash and the registry byte-identical)
and no run hangs.
"""

from __future__ import annotations

import pytest
from hostile_checks import assert_clean_failure
from hostile_tree import Command, Param, commands
from hostile_world import World, hostile_files, valid_value

from provision.errors import ExitCode

# What an option needs beside it before the command reads it, by option name (or
# "command:option" where commands differ): item options go into a sec_tag, a key password
# with an encrypted key, a CA key with its certificate, `check`'s extra inputs with the
# certificate they qualify. A value is None (the world's valid value for that option),
# "@name" (a file of the world) or a literal.
ITEM_OPTIONS = {
    "root_ca",
    "client_cert",
    "client_key",
    "psk_hex_file",
    "key_password_file",
    "sign_key",
    "sign_key_password_file",
}
COMPANIONS: dict[str, list[tuple[str, str | None]]] = {
    "key_password_file": [("client_key", "@device-encrypted.key")],
    "sign_key": [("root_ca", None)],
    "sign_key_password_file": [("root_ca", None), ("sign_key", "@signer-encrypted.key")],
    "ca_cert": [("ca_key", None)],
    "ca_key": [("ca_cert", None)],
    "ca_password_file": [("ca", "@ca-encrypted")],
    "password_file": [("ca", None), ("cert", None), ("key", "@device-encrypted.key")],
    "csr_file": [("ca", None)],
    "key": [("cert", None)],
    "chain": [("cert", None)],
    "server_cert": [("root", None)],
    "signer": [("tcp", "0"), ("once", "")],
    "device keygen:ca": [("ca_key", "@ca/ca.key")],
    "device keygen:ca_key": [("ca", "@ca/ca.crt")],
    "device keygen:ca_key_password_file": [("ca", "@ca-encrypted")],
    # The esp-secure-cert image's own inputs, read before the set's files.
    "esp_efuse_key_file": [("format", "esp-secure-cert"), ("tag", "42"), ("root_ca", None)],
    "esp_salt_file": [
        ("format", "esp-secure-cert"),
        ("esp_key_storage", "hmac-derived"),
        ("tag", "42"),
        ("root_ca", None),
    ],
}
# The argument-less bundle options of `device write/verify`: the items are the subject.
BESIDE_ITEMS = {"bundle", "spec"}

HOSTILE_KINDS = ("char-device", "fifo", "directory", "missing", "name-too-long")


def _cases() -> list[tuple[Command, Param]]:
    return [(cmd, p) for cmd in commands() for p in cmd.params if p.is_input_file]


def _args(world: World, cmd: Command, param: Param, bad: str) -> list[str]:
    chosen: dict[str, str | None] = {}
    for q in cmd.params:
        if q.required and q is not param:
            chosen[q.key] = valid_value(world, cmd, q) or str(world / f"new-{q.key}")
    if param.key in ITEM_OPTIONS and cmd.param("tag") is not None:
        chosen.setdefault("tag", "42")
    companions = COMPANIONS.get(f"{cmd.id}:{param.key}", COMPANIONS.get(param.key, []))
    for name, value in companions:
        companion = cmd.param(name)
        if companion is None or name in chosen:
            continue
        if value is None:
            value = valid_value(world, cmd, companion)
        elif value.startswith("@"):
            value = str(world / value[1:])
        chosen[name] = value
    args = list(cmd.path)
    for name, value in chosen.items():
        q = cmd.param(name)
        assert q is not None
        if q.is_flag:
            args.append(q.flag or "")
        elif q.flag:
            args += [q.flag, value or ""]
        else:
            args.append(value or "")
    args += [param.flag, bad] if param.flag else [bad]
    return args


def test_the_tree_has_file_inputs_to_attack() -> None:
    # The generator found the commands it should: an empty walk would pass vacuously.
    names = {(c.id, p.key) for c, p in _cases()}
    assert ("bundle inspect", "bundle") in names
    assert ("line run", "config") in names
    assert ("testserver", "key") in names
    assert len(names) > 30


@pytest.mark.parametrize(("cmd", "param"), _cases(), ids=[f"{c.id}:{p.key}" for c, p in _cases()])
def test_non_regular_input_file_is_refused_in_one_line(run, world, cmd, param) -> None:
    bad = hostile_files(world.dir / "hostile")
    before = world.tree()
    for kind in HOSTILE_KINDS:
        result = run(*_args(world, cmd, param, bad[kind]))
        name = bad[kind] if kind != "name-too-long" else "nnnnnnnnnn"
        assert_clean_failure(result, world, ExitCode.INPUT, name)
        assert world.tree() == before, f"{kind}: the world changed"


def _output_cases() -> list[tuple[Command, Param]]:
    # `sim --flash` is an output of a command that serves until stopped: not run here.
    return [
        (cmd, p)
        for cmd in commands()
        for p in cmd.params
        if p.is_path and not p.is_input_file and cmd.id != "sim"
    ]


@pytest.mark.parametrize(
    ("cmd", "param"), _output_cases(), ids=[f"{c.id}:{p.key}" for c, p in _output_cases()]
)
def test_output_name_too_long_is_bad_input_and_leaves_nothing(run, world, cmd, param) -> None:
    before = world.tree()
    too_long = str(world.dir / "out" / ("o" * 300))
    chosen = [
        arg
        for q in cmd.params
        if q.required and q is not param
        for arg in ([q.flag] if q.flag else [])
        + [valid_value(world, cmd, q) or str(world / f"new-{q.key}")]
    ]
    needs_items = cmd.param("tag") is not None and cmd.param("root_ca") is not None
    items = ["--tag", "42", "--root-ca", str(world / "root-ca.pem")] if needs_items else []
    # The input an output is made from, where the command takes it from an option.
    for name in ("ca", "registry"):
        q = cmd.param(name)
        if q is not None and not q.required:
            items += [q.flag, valid_value(world, cmd, q)]
    if cmd.param("no_password") is not None:
        items.append("--no-password")  # pki init-ca would ask for the new key's password
    result = run(*cmd.path, *chosen, *items, param.flag, too_long)
    line = assert_clean_failure(result, world, ExitCode.INPUT)
    assert "ooooo" in line or str(world / "out") in line, line
    assert world.tree() == before


# Reads that are not of a file a user named: the kernel's process table, and the simulated
# flash rewriting its own file (read first through the one reader).
OTHER_READS = {("provision/transport/serial.py", "read_text"), ("provision/sim/store.py", "open")}


def test_every_file_read_goes_through_the_one_reader() -> None:
    """A new `Path.read_bytes()` or `open()` would bring back the FIFO hang and /dev/zero."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = []
    for path in sorted((root / "provision").rglob("*.py")):
        rel = str(path.relative_to(root))
        if rel == "provision/inputs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            path_read = isinstance(func, ast.Attribute) and func.attr in ("read_bytes", "read_text")
            builtin_open = isinstance(func, ast.Name) and func.id == "open"
            name = func.attr if path_read else "open"  # type: ignore[union-attr]
            if (path_read or builtin_open) and (rel, name) not in OTHER_READS:
                found.append(f"{rel}:{node.lineno} {name}()")
    assert found == [], f"read through provision.inputs instead: {found}"
