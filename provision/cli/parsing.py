"""Option values parsed without building a pydantic validator per option.

typer (from 0.28) turns every option's value into its Python type through a pydantic
TypeAdapter, built the first time the option is parsed: a command line that only asks for
`--help` imported pydantic for `-v`, and `device write` spent more time importing pydantic and
building 31 validators than writing a credential set to a modem. Our options are plain
(str, int, float, bool, Path, and lists of them). For those, `install` gives each parameter a
parser that takes the values whose meaning is beyond doubt (a string, digits, a path that can
be read) and hands anything else — a value to refuse, an unusual spelling — to typer's own
pydantic parser, built then, so errors and edge cases stay typer's. Options with a custom
parser, choices, files, clamping or path checks keep typer's parser. With a typer that parses
through click types (0.27) there is nothing to install.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

# Unambiguous spellings only: anything else (" 5", "1_0", "+5", "1e3") goes to typer.
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MISS = object()


class _FastValue:
    """A typer runtime parameter (its `coerce`) for one plain option."""

    def __init__(self, param: Any, kind: type) -> None:
        self._param = param
        self._kind = kind
        info = param.type_descriptor.parameter_info
        self._min, self._max, self._readable = info.min, info.max, info.readable
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multiple = param.multiple or param.nargs == -1
        if value is None:
            return () if multiple else None  # as typer: no value, no validation
        if multiple:
            if isinstance(value, (list, tuple)):
                items = [self._one(v) for v in value]
                if _MISS not in items:
                    return items
        else:
            one = self._one(value)
            if one is not _MISS:
                return one
        return self._typer_parser().coerce(value, param=param, ctx=ctx)

    def _typer_parser(self) -> Any:
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(self._param.type_descriptor)
        return self._typer

    def _one(self, value: Any) -> Any:
        kind = self._kind
        if kind is str or kind is bool:
            # typer hands a flag's bool over unparsed: what reaches here is None or a
            # spelling ("yes", "0") that typer reads.
            return value if type(value) is kind else _MISS
        if kind is Path:
            return self._path(value)
        if kind is int:
            number: Any = value if type(value) is int else None
            if type(value) is str and _INT.fullmatch(value):
                number = int(value)
        else:
            number = float(value) if type(value) in (int, float) else None
            if type(value) is str and _FLOAT.fullmatch(value):
                number = float(value)
        if number is None:
            return _MISS
        if (self._min is not None and number < self._min) or (
            self._max is not None and number > self._max
        ):
            return _MISS  # typer says what the range is
        return number

    def _path(self, value: Any) -> Any:
        if isinstance(value, Path):
            path = value
        elif type(value) is str and value:
            path = Path(value)
        else:
            return _MISS
        # typer refuses an existing path it may not read; it says so in its own words.
        if self._readable and os.path.exists(path) and not os.access(path, os.R_OK):
            return _MISS
        return path


def _plain_kind(param: Any) -> type | None:
    """str, int, float, bool or Path when `param` is a plain option of that type (or a repeated
    one, list[...]) that typer would parse with no checks of its own beyond the type."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", False) is not None:
        return None
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None:
        return None
    if getattr(info, "click_type", None) is not None or getattr(info, "clamp", False):
        return None
    annotation = descriptor.annotation
    if getattr(annotation, "__origin__", None) is list:
        (annotation,) = annotation.__args__
        if not (param.multiple or param.nargs == -1):
            return None
    if annotation is Path:
        path_checks = (
            info.exists,
            info.resolve_path,
            info.writable,
            not info.file_okay,
            not info.dir_okay,
            info.allow_dash,
            info.path_type is not None,
        )
        return None if any(path_checks) else Path
    return annotation if annotation in (str, int, float, bool) else None


def install(command: Any, ctx: Any) -> None:
    """Give every plain option of `command` and its subcommands the fast parser, their help
    options (made on first use, with the names `ctx` gives; the root's are the only ones set)
    included."""
    help_option = command.get_help_option(ctx) if hasattr(command, "get_help_option") else None
    for param in [*getattr(command, "params", ()), *([help_option] if help_option else [])]:
        kind = _plain_kind(param)
        if kind is not None:
            param._runtime_param = _FastValue(param, kind)
    for sub in getattr(command, "commands", {}).values():
        install(sub, ctx)
