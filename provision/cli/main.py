"""Entry point: assembles the command groups and maps errors to one line and an exit code."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

from provision import __version__
from provision.errors import ExitCode, ProvisionError, clip, one_line

if TYPE_CHECKING:
    # typer vendors click and exports none of its exceptions but BadParameter.
    from typer._click.exceptions import UsageError as ClickUsageError

# command name → help; provision.cli.<name> exposes `app: typer.Typer`.
GROUPS: dict[str, str] = {
    "pki": "Create CAs, issue server and device certificates, CSRs.",
    "check": "Pre-flight check of a credential set.",
    "bundle": "Pack, inspect, verify and unpack credential bundles.",
    "device": "Talk to a device: info, list, write, verify, delete, keygen, tls-check; ports.",
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


app = typer.Typer(
    cls=ProvisionGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Get X.509 credentials onto embedded devices.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"provision {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
) -> None:
    """Get X.509 credentials onto embedded devices."""


for _name, _help in GROUPS.items():
    _sub = importlib.import_module(f"provision.cli.{_name}").app
    if isinstance(_sub, typer.Typer):
        if (
            _sub.registered_callback is None
            and len(_sub.registered_commands) == 1
            and not (_sub.registered_groups)
            and _sub.registered_commands[0].callback is not None
        ):
            # A group with a single command (check, testserver) is the command itself.
            app.command(_name, help=_help)(_sub.registered_commands[0].callback)
        else:
            app.add_typer(_sub, name=_name, help=_help)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
