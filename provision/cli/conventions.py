"""Habits users bring from esptool, nrfcredstore and step, applied to every command in one
place (main.py calls `apply` on each command group it loads) rather than in each module:

- one output option name, `--out/-o`; the old spellings (--out-dir, --dir/-d, --output) still
  parse but are hidden from help;
- PROVISION_PORT, PROVISION_BAUD and PROVISION_DIALECT for every device command;
- `--port auto`: the one USB serial port present, or a numbered list to choose from;
- `--before/--after` DTR/RTS reset sequences with esptool's names (transport/reset.py);
- defaults from provision.toml (config.py): flag > env > ./provision.toml > user file >
  built-in;
- `--json` marks the run, so that an error is also a JSON object on stdout (main.py).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from provision.cli import config
from provision.errors import InputError, UsageError

OUT = ("--out", "-o")
OUT_ALIASES = ("--out-dir", "--output", "--dir", "-d")
DEVICE_ENV = {
    "--port": "PROVISION_PORT",
    "--baud": "PROVISION_BAUD",
    "--dialect": "PROVISION_DIALECT",
}
JSON_META = "provision.json"
# Text options whose value is one of a few names: the metavar says which kind of name.
NAMED_VALUES = {"dialect", "target", "encoding", "format", "key_type", "tls", "slot", "profile"}
PORT_FORMS = "/dev/ttyACM0 (Linux), /dev/cu.usbmodem1101 (macOS), COM3 (Windows)"


def leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from leaves(sub, (*path, name))
    else:
        yield path, command


def _hide_aliases(option: Any, visible: list[str]) -> None:
    """Parse every spelling in option.opts, show only `visible` in help."""
    original = option.get_help_record
    option.visible_opts = visible

    def get_help_record(ctx: Any) -> Any:
        all_opts = option.opts
        option.opts = [o for o in all_opts if o in visible]
        try:
            return original(ctx)
        finally:
            option.opts = all_opts

    option.get_help_record = get_help_record


def _reports_to_stderr_when_output_is_stdout(command: Any, name: str) -> None:
    original = command.callback

    def callback(**kwargs: Any) -> Any:
        if str(kwargs.get(name)) == "-":
            # `-o -` puts the data on stdout: the human report moves to stderr.
            from provision.cli import common

            if kwargs.get("json_out"):
                raise typer.BadParameter("--json and -o - would share stdout", param_hint="--json")
            common.console.file = sys.stderr
        return original(**kwargs)

    command.callback = callback


def _one_output_name(command: Any) -> None:
    for param in command.params:
        names = set(getattr(param, "opts", None) or ())
        if names & {"--out", *OUT_ALIASES} and command.callback is not None and param.name:
            _reports_to_stderr_when_output_is_stdout(command, param.name)
        opts = list(getattr(param, "opts", []))
        aliases = [o for o in opts if o in OUT_ALIASES]
        taken = {o for p in command.params if p is not param for o in getattr(p, "opts", [])}
        if aliases and not taken & set(OUT):
            param.opts = [*OUT, *[o for o in opts if o not in OUT]]
            _hide_aliases(param, list(OUT))
            taken.update(OUT)
        elif "--out" in opts and "-o" not in taken:
            param.opts = [*opts, "-o"]
            taken.add("-o")


def _mark_json(ctx: Any, _param: Any, value: Any) -> Any:
    if value:
        ctx.meta[JSON_META] = True
    return value


def pick_port(ports: list[dict[str, str]], interactive: bool) -> str:
    """`--port auto`: the one USB serial port, or the user's choice among several."""
    usb = [p for p in ports if "USB" in p.get("hwid", "").upper()] or ports
    if len(usb) == 1:
        return usb[0]["port"]
    if not usb:
        raise InputError(f"--port auto: no serial port found; name one ({PORT_FORMS})")
    names = ", ".join(p["port"] for p in usb)
    if not interactive:
        raise InputError(f"--port auto: {len(usb)} serial ports ({names}); name one with --port")
    for i, p in enumerate(usb, 1):
        typer.echo(f"  {i}) {p['port']}  {p.get('description', '')}", err=True)
    choice = int(typer.prompt("port", type=int, err=True))
    if not 1 <= choice <= len(usb):
        raise UsageError(f"--port auto: choose 1..{len(usb)}")
    return usb[choice - 1]["port"]


def _resolve_port(ctx: Any, _param: Any, value: Any) -> Any:
    if value != "auto" or ctx.resilient_parsing:
        return value
    from provision.transport.serial import list_ports

    return pick_port(list_ports(), interactive=sys.stdin.isatty() and sys.stderr.isatty())


def choice(names: dict[str, Any]) -> str:
    return ", ".join(names)


@functools.cache
def _reset_params() -> tuple[Any, ...]:
    # Declared the typer way and taken from a throwaway app: typer's parameter classes take
    # different constructor arguments from one version to the next.
    from provision.transport import reset

    probe = typer.Typer()

    @probe.command()
    def _probe(
        before: str = typer.Option(
            "no-reset",
            "--before",
            metavar="RESET",
            envvar="PROVISION_BEFORE",
            help=f"DTR/RTS sequence before talking (esptool's names): {choice(reset.BEFORE)}. "
            "Serial ports only.",
        ),
        after: str = typer.Option(
            "no-reset",
            "--after",
            metavar="RESET",
            envvar="PROVISION_AFTER",
            help=f"DTR/RTS sequence after success: {choice(reset.AFTER)}.",
        ),
    ) -> None:
        pass

    params = typer.main.get_command(probe).params
    # Built once: click parameters hold no per-command state, every device command shares them.
    return tuple(p for p in params if p.name in ("before", "after"))


def _with_resets(command: Any) -> None:
    from provision.transport import reset

    command.params += list(_reset_params())
    original = command.callback

    # wraps: the command's own signature and hints stay readable (help, tests of the tree).
    @functools.wraps(original)
    def callback(**kwargs: Any) -> Any:
        before, after = kwargs.pop("before"), kwargs.pop("after")
        for name, table, flag in (
            (before, reset.BEFORE, "--before"),
            (after, reset.AFTER, "--after"),
        ):
            if name not in table:
                raise typer.BadParameter(f"{name!r} (valid: {choice(table)})", param_hint=flag)
        port, baud = kwargs.get("port"), kwargs.get("baud")
        from provision.transport.serial import reset_lines  # pyserial: only when running

        if port:
            reset_lines(port, reset.BEFORE[before], baud)
        result = original(**kwargs)
        if port:
            reset_lines(port, reset.AFTER[after], baud)
        return result

    command.callback = callback


def _config_defaults(group: str, path: tuple[str, ...], command: Any, values: dict) -> set[str]:
    """Set option defaults from provision.toml; the keys it used."""
    used = set()
    for param in command.params:
        for opt in getattr(param, "opts", []):
            key = opt.lstrip("-")
            if opt.startswith("--") and key in values:
                value = values[key]
                if getattr(param, "multiple", False) and not isinstance(value, list):
                    value = [value]
                param.default = value
                used.add(key)
    return used


def _base_type(param: Any) -> type | None:
    """The Python type behind an option: typer versions keep it in different places."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is not None:
        for _ in range(3):  # list[Path] | None → Path
            args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
            if not args:
                break
            annotation = args[0]
        return annotation if isinstance(annotation, type) else None
    name = getattr(getattr(param, "type", None), "name", "")
    return {"path": Path, "text": str, "integer": int, "integer range": int, "float": float}.get(
        name
    )


def _metavar(param: Any) -> str | None:
    """One metavar style for every option, upper case as in esptool and nrfcredstore: PORT,
    FILE, DIR, N, SECONDS, VAR, TEXT."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.metavar and param.metavar.isupper():
        return param.metavar
    name, kind = param.name or "", _base_type(param)
    help_text = (getattr(param, "help", None) or "").lower()
    if param.param_type_name == "argument":
        if hasattr(param, "display_type_rich"):
            # typer >= 0.2x shows "BUNDLE <path>"; the name in capitals says enough.
            param.display_type_rich = lambda ctx: ""
        return name.upper()
    if name.endswith("_env"):
        return "VAR"
    if name in ("port",) and kind is str:
        return "PORT"
    if kind is Path:
        return "DIR" if "director" in help_text or "folder" in help_text else "FILE"
    if kind is int:
        return "SEC_TAG" if name == "tag" else "N"
    if kind is float:
        return "SECONDS" if "second" in help_text else "NUMBER"
    long = next((o[2:] for o in getattr(param, "opts", []) if o.startswith("--")), name)
    if long.replace("-", "_") in NAMED_VALUES:
        return long.upper().replace("-", "_")
    return "TEXT"


def apply(group: str, command: Any) -> None:
    """Bring one loaded command group (or single command) in line with the conventions."""
    from provision.cli.examples import epilog

    settings, files = config.load()
    group_values = config.defaults_for(settings, group, None)
    used: set[str] = set()
    for path, leaf in leaves(command):
        leaf.epilog = epilog(" ".join((group, *path)))
        for param in leaf.params:
            if param.name not in ("help", "install_completion", "show_completion"):
                param.metavar = _metavar(param)
        _one_output_name(leaf)
        for param in leaf.params:
            opts = getattr(param, "opts", [])
            if "--json" in opts:
                param.callback = _mark_json
            if group == "device":
                for opt, env in DEVICE_ENV.items():
                    if opt in opts and not param.envvar:
                        param.envvar = env
                if "--port" in opts:
                    param.callback = _resolve_port
        if group == "device" and any("--port" in getattr(p, "opts", []) for p in leaf.params):
            _with_resets(leaf)
        values = config.defaults_for(settings, group, path[0] if path else None)
        used |= _config_defaults(group, path, leaf, values)
        table = settings.get(group, {}).get(path[0], {}) if path else {}
        for key in table if isinstance(table, dict) else ():
            if key not in used:
                raise InputError(f"{_where(files)}: [{group}.{path[0]}] has no option --{key}")
    for key in group_values:
        if key not in used:
            raise InputError(f"{_where(files)}: [{group}] no {group} command has --{key}")


def _where(files: list[Any]) -> str:
    return ", ".join(str(f) for f in files) or config.FILE_NAME


def json_error(ctx: Any, err: Any) -> None:
    """With --json, a failure is also one JSON object on stdout: scripts read one stream."""
    from provision.cli import common

    if not ctx.meta.get(JSON_META) or common.json_printed:
        return
    common.print_json(
        {
            "ok": False,
            "error": {"message": err.message, "code": err.code, "exit_code": int(err.exit_code)},
        }
    )
