"""The CLI's contract with scripts: one line on stderr, a documented exit code, no traceback."""

import typer
from typer.testing import CliRunner

from provision.cli.main import ProvisionGroup
from provision.errors import BundleError, ExitCode, InputError, LinkError


def _app(exc: BaseException) -> typer.Typer:
    app = typer.Typer(cls=ProvisionGroup)

    @app.command()
    def boom() -> None:
        raise exc

    @app.command()
    def fine() -> None:
        typer.echo("ok")

    return app


def _run(exc: BaseException, args=("boom",)):
    return CliRunner().invoke(_app(exc), list(args))


def test_provision_error_maps_to_its_exit_code_and_one_line():
    for exc, code in [
        (InputError("a.pem: not PEM or DER"), ExitCode.INPUT),
        (BundleError("bad magic"), ExitCode.BUNDLE),
        (LinkError("no answer"), ExitCode.LINK),
    ]:
        result = _run(exc)
        assert result.exit_code == code
        assert result.output.strip() == f"error: {exc}"
        assert "Traceback" not in result.output


def test_unexpected_exception_is_one_line_without_traceback(monkeypatch):
    monkeypatch.delenv("PROVISION_DEBUG", raising=False)
    result = _run(RuntimeError("kaboom"))
    assert result.exit_code == 70
    assert result.output.count("\n") == 1
    assert "internal error (RuntimeError)" in result.output
    assert "Traceback" not in result.output


def test_normal_command_unaffected():
    result = _run(RuntimeError(), args=("fine",))
    assert result.exit_code == 0 and result.output == "ok\n"


def test_version(cli):
    result = cli(["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("provision ")


def test_closed_output_pipe_is_not_an_internal_error(tmp_path):
    import subprocess
    import sys

    # `provision … | head`: the reader closes early; no traceback, no "internal error".
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision.cli.main", "pki", "init-ca", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    assert "internal error" not in err and "Traceback" not in err
