"""Keyword options checked against the signature they are meant for.

Configs and constructors hand tables of options to functions (`[game_args]` to a
game builder, `[optimizer_args]` to an optimizer class, `data_args` to a dataset,
...). A name the function does not take, or a value whose type is not the one its
annotation says, must be refused here with the key named, not deep inside torch
or silently. One function does it for every table: `check_kwargs`.

Types come from the annotations (`int`, `float`, `bool`, `str`, `dict`,
`tuple`/`list`, unions with `None`); an int is accepted for a float, a bool is
never a number, and a parameter annotated with anything else (a Tensor, a
callable) is not type-checked.
"""
from __future__ import annotations

import inspect
import types
import typing

_CHECKED = (bool, int, float, str, dict, tuple, list)
_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
          dict: "a table", tuple: "a list", list: "a list", type(None): "none"}


def parameters(fn) -> dict[str, inspect.Parameter]:
    """fn's keyword-passable parameters (self and *args / **kwargs left out)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n: p for n, p in inspect.signature(fn).parameters.items() if p.kind in kinds and n != "self"}


def takes_var_keyword(fn) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def _hints(fn) -> dict:
    if isinstance(fn, type):  # a class: the annotations of its constructor
        fn = fn.__init__
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation that does not evaluate here: no type checks for fn
        return {}


def _accepted(annotation) -> tuple[type, ...] | None:
    """The Python types a value for `annotation` may have, or None: not checked."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [_accepted(a) for a in typing.get_args(annotation)]
        if any(m is None for m in members):
            return None
        return tuple(t for m in members for t in m)
    if annotation is type(None):
        return (type(None),)
    base = origin if origin is not None else annotation
    if base in (tuple, list):
        return (tuple, list)
    if base in _CHECKED:
        return (base,)
    return None


def type_ok(value, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, int) and float in accepted:
        return True
    return isinstance(value, accepted)


def expected(accepted: tuple[type, ...]) -> str:
    names = []
    for t in accepted:
        if _NAMES[t] not in names:
            names.append(_NAMES[t])
    return " or ".join(names)


def check_kwargs(where: str, fn, kwargs: dict, *, extra: tuple[str, ...] = ()) -> None:
    """Raise ValueError naming `where.key` for a key of kwargs that fn does not take
    (listing the ones it takes), or a value whose type does not match fn's annotation.
    `extra`: further names fn accepts through its **kwargs."""
    params = parameters(fn)
    valid = sorted(set(params) | set(extra))
    for key in kwargs:
        if key not in params and key not in extra:
            raise ValueError(f"{where}.{key}: unknown option; expected one of {valid}")
    check_types(where, fn, kwargs)


def check_types(where: str, fn, kwargs: dict) -> None:
    """Raise ValueError naming `where.key` for a value whose type is not that of fn's
    annotation for `key` (keys fn does not annotate are not checked)."""
    hints = _hints(fn)
    for key, value in kwargs.items():
        accepted = _accepted(hints[key]) if key in hints else None
        if accepted is not None and not type_ok(value, accepted):
            raise ValueError(f"{where}.{key}: expected {expected(accepted)}, got {value!r}")
