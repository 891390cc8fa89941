"""The CLI's own command tree, walked: which commands exist and which of their options read
a file, write a file, or take free text. The hostile battery is generated from this, so a new
command or option is covered without editing the tests.

Classification is by type (a `Path` parameter names a file) and by a short list of names that
are outputs; anything else of type Path is an input the command reads.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import typer

from provision.cli.main import app

# Path parameters the command writes (or creates), not reads.
OUTPUT_NAMES = {"out", "output", "out_dir", "cert_out", "flash"}


@dataclass(frozen=True)
class Param:
    name: str
    opts: tuple[str, ...]  # () for an argument
    annotation: object
    required: bool
    multiple: bool
    is_flag: bool

    @property
    def key(self) -> str:
        """The option's name without typer's trailing underscore (`client_cert_`)."""
        return self.name.rstrip("_")

    @property
    def is_path(self) -> bool:
        return _mentions(self.annotation, Path)

    @property
    def is_str(self) -> bool:
        return _mentions(self.annotation, str) and not self.is_path

    @property
    def is_input_file(self) -> bool:
        return self.is_path and self.key not in OUTPUT_NAMES

    @property
    def flag(self) -> str | None:
        return self.opts[0] if self.opts else None


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    params: tuple[Param, ...]

    @property
    def id(self) -> str:
        return " ".join(self.path)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.key == name), None)


def _mentions(annotation: object, kind: type) -> bool:
    if annotation is kind:
        return True
    return any(_mentions(arg, kind) for arg in typing.get_args(annotation))


def _annotation_from_callback(cmd: typing.Any, name: str) -> object:
    callback = getattr(cmd, "callback", None)
    if callback is None:
        return None
    try:
        return typing.get_type_hints(callback).get(name)
    except Exception:
        pass
    # A hint that names a type imported for the checker only: read its text.
    import inspect

    param = inspect.signature(callback).parameters.get(name)
    text = str(param.annotation) if param is not None else ""
    if "Path" in text:
        return Path | None
    return str | None if "str" in text else None


def _params(cmd: typing.Any) -> tuple[Param, ...]:
    out = []
    for p in cmd.params:
        descriptor = getattr(p, "type_descriptor", None)
        annotation = descriptor.annotation if descriptor is not None else None
        if descriptor is None:
            # typer before 0.28 (the floor) keeps no annotation: a path option has click's
            # Path type (its class name), and other annotations are read off the callback.
            annotation = _annotation_from_callback(cmd, p.name)
        out.append(
            Param(
                name=p.name,
                opts=tuple(o for o in p.opts if o.startswith("-")),
                annotation=annotation,
                required=bool(p.required),
                multiple=bool(getattr(p, "multiple", False)),
                is_flag=bool(getattr(p, "is_flag", False)),
            )
        )
    return tuple(out)


def commands() -> Iterator[Command]:
    """Every leaf command of `provision`, depth first, in name order."""
    root = typer.main.get_command(app)

    ctx = click_context(root)

    def walk(cmd: typing.Any, path: tuple[str, ...]) -> Iterator[Command]:
        # Groups load their commands on demand (the root is lazy): ask, never read .commands.
        if not hasattr(cmd, "list_commands"):
            yield Command(path, _params(cmd))
            return
        for name in sorted(cmd.list_commands(ctx)):
            yield from walk(cmd.get_command(ctx, name), (*path, name))

    yield from walk(root, ())


def click_context(root: typing.Any) -> typing.Any:
    """A context to ask a (lazy) group for its commands, outside any invocation."""
    return root.make_context("provision", [], resilient_parsing=True)
