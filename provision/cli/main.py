"""Entry point: assembles the command groups and maps errors to one line and an exit code."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from provision import __version__
from provision.cli import conventions, parsing
from provision.errors import ExitCode, ProvisionError, clip, one_line

if TYPE_CHECKING:
    # typer vendors click and exports none of its exceptions but BadParameter.
    from typer._click.exceptions import UsageError as ClickUsageError

# command name → help; provision.cli.<name> exposes `app: typer.Typer`.
GROUPS: dict[str, str] = {
    "pki": "Create CAs, issue server and device certificates, CSRs.",
    "check": "Pre-flight check of a credential set.",
    "bundle": "Pack, inspect, verify and unpack credential bundles.",
    "device": "Talk to a device: write, verify, list, delete, keygen, tls-check.",
    "sim": "Run a simulated device.",
    "line": "Factory line: provision many devices on many ports.",
    "registry": "The device registry: show, export, verify.",
    "testserver": "A mutual-TLS test server on 127.0.0.1.",
}


def _is_cli_control(err: BaseException) -> bool:
    return isinstance(err, (typer.Exit, typer.Abort)) or type(err).__module__.split(".")[0] in (
        "click",
        "typer",
    )


# typer's (vendored) click UsageError, the base of BadParameter, MissingParameter, NoSuchOption.
_CLICK_USAGE_ERROR: type[ClickUsageError] = typer.BadParameter.__mro__[1]


def _os_error_text(err: OSError) -> str:
    reason = err.strerror or type(err).__name__
    name = err.filename if err.filename is not None else None
    return f"{clip(name)}: {reason}" if name is not None else reason


def _usage_error(err: ClickUsageError) -> NoReturn:
    """One line, like every other error (typer would draw a box over several lines); exit 2,
    typer's code for a bad command line."""
    message = err.format_message()
    if not message.strip():
        # No arguments at all: typer has shown the help (no_args_is_help), nothing to add.
        raise err
    ctx = getattr(err, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    typer.echo(f"error: {one_line(message)}{hint}", err=True)
    raise typer.Exit(int(ExitCode.USAGE)) from None


def _load(name: str) -> Any:
    """The click command for `provision <name>`: its module is imported only now, so that
    `provision pki …` never loads the serial stack and `provision --help` loads no command."""
    sub = importlib.import_module(f"provision.cli.{name}").app
    command = typer.main.get_command(sub)
    # typer gives every app it builds on its own the completion options; only the root has them.
    command.params = [
        p for p in command.params if p.name not in ("install_completion", "show_completion")
    ]
    # A group with a single command (check, testserver) is that command itself.
    command.name = name
    command.help = command.help or GROUPS[name]
    if isinstance(command, TyperGroup):
        command.help = GROUPS[name]
    _plain_help(command)
    conventions.apply(name, command)
    return command


def _plain_help(command: Any) -> None:
    # click's own help layout, as esptool's and nrfcredstore's argparse: no rich panels, so
    # `--help` neither loads rich's markdown and syntax modules nor draws boxes in a pipe.
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


class ProvisionGroup(TyperGroup):
    """Turns every ProvisionError into `error: …` on stderr and its exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        # The root's own options (`provision --bogus`) are parsed here, before invoke.
        try:
            return super().make_context(*args, **kwargs)
        except _CLICK_USAGE_ERROR as err:
            _usage_error(err)

    # ctx: the parent's Context; typer >= 0.24 types it with its private vendored click.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ProvisionError as err:
            conventions.json_error(ctx, err)
            typer.echo(f"error: {one_line(err.message)}", err=True)
            raise typer.Exit(int(err.exit_code)) from None
        except OSError as err:
            if isinstance(err, BrokenPipeError):
                raise
            # The operating system refused a file, a port or a socket the user named (a name
            # too long, no permission, not found): bad input, not a bug in this tool.
            typer.echo(f"error: {one_line(_os_error_text(err))}", err=True)
            raise typer.Exit(int(ExitCode.INPUT)) from None
        except UnicodeError as err:
            typer.echo(f"error: input is not valid text ({type(err).__name__})", err=True)
            raise typer.Exit(int(ExitCode.INPUT)) from None
        except BrokenPipeError:
            # The reader went away (`provision … | head`): typer stops quietly with exit 1.
            raise
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except _CLICK_USAGE_ERROR as err:
            _usage_error(err)
        except Exception as err:
            # typer/click use exceptions for --help, usage errors and exits: let them through.
            if _is_cli_control(err) or os.environ.get("PROVISION_DEBUG") == "1":
                raise
            typer.echo(
                f"error: internal error ({type(err).__name__}); rerun with PROVISION_DEBUG=1 "
                "and report it",
                err=True,
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None


class LazyGroup(ProvisionGroup):
    """The `provision` command: loads its command groups (GROUPS) on first use."""

    _listing = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        parsing.install(self, ctx)  # the root's own options (-v, -q) parse without pydantic
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(GROUPS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in GROUPS:
            return None
        if self._listing:
            # The command list in `provision --help` needs names and one-line helps only.
            return TyperCommand(cmd_name, help=GROUPS[cmd_name])
        if cmd_name not in self.commands:
            self.commands[cmd_name] = _load(cmd_name)
            parsing.install(self.commands[cmd_name], ctx)
        return self.commands[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help wraps at the terminal's width, up to 120 columns (click's own limit is 80).
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    rich_markup_mode=None,
    help="Get X.509 credentials onto embedded devices.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"provision {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."
    ),
    verbose: int = typer.Option(
        0,
        "--verbose",
        "-v",
        count=True,
        help="-v: trace every frame or line of device commands (as --trace); -vv: also "
        "tracebacks for internal errors (PROVISION_DEBUG=1).",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print errors and requested data only, no reports."
    ),
) -> None:
    """Get X.509 credentials onto embedded devices.

    Defaults for any option can come from provision.toml (./ and the user's config dir):
    flag > environment > ./provision.toml > user file > built-in."""
    from provision.cli import common
    from provision.trace import ENV as TRACE_ENV

    if verbose >= 1:
        os.environ[TRACE_ENV] = "1"
    if verbose >= 2:
        os.environ["PROVISION_DEBUG"] = "1"
    # Set on every run, not only when asked: tests and scripts call the app more than once in
    # one process.
    common.configure(quiet=quiet)


def run() -> None:
    code: str | int | None = 0
    try:
        app()
    except SystemExit as done:
        code = done.code
    _exit(code)


def _exit(code: str | int | None) -> NoReturn:
    """End the process without the interpreter's teardown of every module and object
    (15-20 ms of a one-shot `device write`, after its work is done). What teardown is for
    still happens: the exit handlers run (logging, temporary files) and the output is
    flushed. With a thread of ours still running, the normal exit waits for it."""
    import atexit
    import threading

    main = threading.main_thread()
    if any(t.is_alive() and not t.daemon and t is not main for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    status = code if isinstance(code, int) else 0 if code is None else 1
    if isinstance(code, str):
        print(code, file=sys.stderr)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        status = status or 120  # what the interpreter's own exit gives a failed flush
    os._exit(status)


if __name__ == "__main__":
    run()
