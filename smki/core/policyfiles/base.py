"""How a policy file is read: YAML into a frozen pydantic model, and every problem into one coded
:class:`ConfigurationError` that names the file, the key and what was expected.

Scalars are strict (``max_csrs: "50000"`` or ``enforce: "no"`` is refused, not coerced): a policy author who
quotes a number has probably mistyped something else too, and the error says where.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from collections.abc import Iterable, Iterator, KeysView
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import yaml
from cryptography import x509
from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, Strict, ValidationError

from smki.core.errors import CODE_PATTERN, ConfigurationError, Finding
from smki.core.eui64 import Eui64

FILE_MISSING = "CA:CFG1"
NOT_YAML = "CA:CFG2"
NOT_AS_DESCRIBED = "CA:CFG3"  # the file's content does not match its schema, or disagrees with another file
MAX_LISTED = 10  # problems spelled out in the message; all of them are in ``details``

M = TypeVar("M", bound="PolicyModel")


class PolicyModel(BaseModel):
    """One mapping of a policy file: unknown keys are refused (a misspelt key would otherwise be ignored
    and its default silently used), values are immutable once loaded."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        """Disagreements the types cannot express: between keys, or with another policy file."""
        return iter(())


class Section(PolicyModel):
    """A policy section read as attributes; ``section["key"]``, ``.get()`` and ``**section`` still work for
    code written when the sections were plain dictionaries."""

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in type(self).model_fields else default

    def keys(self) -> KeysView[str]:
        """The keys that are set (``None`` means absent, as in the YAML)."""
        return {name: None for name in type(self).model_fields if getattr(self, name) is not None}.keys()


ABSENT: Any = object()  # a Problem with nothing to show as found (a missing key)


@dataclass(frozen=True)
class Problem:
    """A key path inside one file, what was expected there, what was found, and the code when it is not the
    file's own (a GBCS rule, say)."""

    loc: tuple[str | int, ...]
    expected: str
    found: Any = ABSENT
    code: str | None = None
    what: str = "expected"  # or "missing; expected", "unknown key; expected"

    @property
    def line(self) -> str:
        found = "" if self.found is ABSENT else f", found {_show(self.found)}"
        return f"{key_path(self.loc)}: {self.what} {self.expected}{found}"


@dataclass(frozen=True)
class PolicyContext:
    """What a file is checked against: its own name, and the names other policy files define."""

    stem: str = ""
    known: typing.Mapping[str, typing.Collection[Any]] | None = None

    def names(self, kind: str) -> typing.Collection[Any] | None:
        return (self.known or {}).get(kind)


def unknown(loc: tuple[str | int, ...], value: Any, allowed: Iterable[str], what: str) -> Problem:
    return Problem(loc, f"one of {what} ({', '.join(sorted(allowed)) or 'none defined'})", value)


# ---------------------------------------------------------------------------------------------- field types

T = TypeVar("T")
OID_TEXT = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
TupleOf = Annotated[tuple[T, ...], Strict(False)]  # a YAML list becomes a tuple; its items stay strict
Names = TupleOf[str]


def _oid(value: Any) -> x509.ObjectIdentifier:
    if isinstance(value, x509.ObjectIdentifier):
        return value
    if not isinstance(value, str) or not OID_TEXT.fullmatch(value):
        raise ValueError("an object identifier in dotted form, such as 1.2.826.0.1.8641679.1.2.1.4")
    return x509.ObjectIdentifier(value)


def _eui64(value: Any) -> Eui64:
    if isinstance(value, Eui64):
        return value
    if not isinstance(value, str):
        raise ValueError("an EUI-64 as quoted text of 16 hexadecimal digits, such as \"90B3D51F30000001\"")
    return Eui64.parse(value)  # InvalidEui64 is a ValueError that explains the form


def time_of_day(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str) and re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        return dt.time.fromisoformat(value)
    # YAML reads an unquoted 07:00 as the sexagesimal number 420
    raise ValueError("a time of day as quoted text \"HH:MM\" (24-hour), such as \"07:00\"")


# Each reads the file's text form and writes it back (model_dump gives what a file would hold).
Oid = Annotated[x509.ObjectIdentifier, PlainValidator(_oid), PlainSerializer(lambda oid: oid.dotted_string)]
Eui64Value = Annotated[Eui64, PlainValidator(_eui64), PlainSerializer(lambda eui: eui.hex)]
DeviceId = Annotated[str, PlainValidator(lambda value: _eui64(value).hex)]  # stored as 16 upper-case hex digits
TimeOfDay = Annotated[dt.time, PlainValidator(time_of_day), PlainSerializer(lambda time: f"{time:%H:%M}")]


# ---------------------------------------------------------------------------------------------- reading

def load_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError as exc:
        raise ConfigurationError(FILE_MISSING, f"policy file {path} is missing") from exc
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: undecodable bytes, or a scalar YAML types but cannot build (2024-13-45, !!int abc)
        raise ConfigurationError(NOT_YAML, f"policy file {path} is not valid YAML: {exc}") from exc


def read_policy_file(path: Path, model: type[M], *, code: str = NOT_AS_DESCRIBED,
                     context: PolicyContext | None = None, optional: bool = False) -> M:
    """``path`` as a ``model``, or a :class:`ConfigurationError` listing every problem in it. An ``optional``
    file that does not exist reads as the model's defaults."""
    if optional and not path.exists():
        return model()
    data = load_yaml(path)
    return parse_policy(data, path, model, code=code, context=context)


def parse_policy(data: Any, path: Path, model: type[M], *, code: str = NOT_AS_DESCRIBED,
                 context: PolicyContext | None = None) -> M:
    context = context or PolicyContext(stem=path.stem)
    if not isinstance(data, dict):
        raise ConfigurationError(code, f"policy file {path}: expected a mapping of keys to values at the top "
                                 f"level, found {_kind(data)}")
    try:
        loaded = model.model_validate(data)
    except ValidationError as exc:
        raise _refusal(path, code, [_problem(model, error) for error in exc.errors(include_url=False)]) from None
    problems = list(loaded.problems(context))
    if problems:
        raise _refusal(path, code, problems)
    return loaded


def _refusal(path: Path, code: str, problems: list[Problem]) -> ConfigurationError:
    own = {p.code for p in problems}
    chosen = next(iter(own)) if len(own) == 1 else None
    chosen = chosen or code
    listed = "; ".join(p.line for p in problems[:MAX_LISTED])
    more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return ConfigurationError(chosen, f"policy file {path} is not as described in docs/configuration.md: "
                              f"{listed}{more}",
                              details=[Finding(p.code or code, f"{path}: {p.line}", field=key_path(p.loc))
                                       for p in problems])


def key_path(loc: Iterable[str | int]) -> str:
    """``organisation.remote_party_roles.supplier.user_roles[1]``; ``(key)`` marks a mapping key itself."""
    text = ""
    for part in loc:
        if part == "[key]":
            text += " (key)"
        elif isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (an empty file?)"
    return {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------- explaining

def _problem(model: type[BaseModel], error: Any) -> Problem:
    loc = tuple(error["loc"])
    kind, message = error["type"], error["msg"]
    custom = kind if CODE_PATTERN.match(kind) else None
    if kind == "missing":
        return Problem(loc, describe(_annotation_at(model, loc)), ABSENT, custom, "missing; expected")
    if kind == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        expected = f"one of {', '.join(allowed)}" if allowed else "no key here"
        return Problem(loc, expected, ABSENT, custom, "unknown key; expected")
    found = error.get("input", ABSENT)
    if kind in ("value_error", "assertion_error"):
        message = re.sub(r"^(Value|Assertion) error, ", "", message)
    else:
        message = re.sub(r"^Input should be ", "", message)
        annotation = _annotation_at(model, loc)
        if annotation is not None and kind.endswith("_type"):
            message = describe(annotation)
    return Problem(loc, message, found, custom)


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _step(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(annotation):
            found = _step(option, part)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part)) or next(
            (f for f in annotation.model_fields.values() if f.alias == part), None)
        return field.annotation if field is not None else None
    if origin in (dict, typing.Mapping):
        return _unwrap(typing.get_args(annotation)[1]) if part != "[key]" else str
    if origin in (list, tuple):
        return _unwrap(typing.get_args(annotation)[0])
    if typing.is_typeddict(annotation):
        return typing.get_type_hints(annotation).get(str(part))
    return None


def _annotation_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    annotation: Any = model
    for index, part in enumerate(loc):
        nxt = _step(annotation, part)
        if nxt is None:
            return None
        # a mapping's key and value are addressed as (..., key) and (..., key, "[key]")
        if index + 1 < len(loc) and loc[index + 1] == "[key]":
            return str
        annotation = nxt
    return annotation


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    annotation = _unwrap(_annotation_at(model, loc) if loc else model)
    for option in typing.get_args(annotation) or (annotation,):
        option = _unwrap(option)
        if isinstance(option, type) and issubclass(option, BaseModel):
            return [f.alias or name for name, f in option.model_fields.items()]
        if typing.is_typeddict(option):
            return list(typing.get_type_hints(option))
    return []


def describe(annotation: Any) -> str:
    """What a person should write for a value of this type."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if annotation is None or annotation is type(None):
        return "nothing (null)"
    if origin in (Union, types.UnionType):
        options = [describe(a) for a in arguments if a is not type(None)]
        return " or ".join(options) + (" or null" if type(None) in arguments else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in arguments)
    if origin in (list, tuple):
        return f"a list, each item {describe(arguments[0])}" if arguments else "a list"
    if origin in (dict, typing.Mapping):
        return f"a mapping of names, each to {describe(arguments[1])}"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "text"
    if annotation is x509.ObjectIdentifier:
        return "an object identifier in dotted form"
    if annotation is Eui64:
        return "an EUI-64 (16 hexadecimal digits, quoted)"
    if annotation is dt.time:
        return "a time of day \"HH:MM\""
    if typing.is_typeddict(annotation):
        return "a mapping with the keys " + ", ".join(typing.get_type_hints(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping with the keys " + ", ".join(f.alias or n for n, f in annotation.model_fields.items())
    return getattr(annotation, "__name__", str(annotation))
