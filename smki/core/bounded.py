"""Values from outside (URL paths, query strings) bounded to what the database can hold.

Every identifier and number the sandbox stores is an ``INTEGER`` column: 32 bits on PostgreSQL, 64 on
SQLite. A larger number from a caller cannot name anything, yet handed to the driver it fails the
request with a 500 (``OverflowError`` on SQLite, ``NumericValueOutOfRange`` on PostgreSQL from
2147483648). Likewise PostgreSQL text cannot hold a NUL character, and the driver refuses one. So
values are bounded once, here, at the edge, to PostgreSQL's range on both databases: one behaviour
whichever database an instance runs on.

- :class:`DatabaseIntegerConverter` replaces Flask's ``int`` URL converter app-wide, so every
  ``<int:...>`` route, present and future, refuses an out-of-range number with a coded 404.
- :class:`PrintableTextConverter` replaces the default (``string``) converter: no path segment with a
  control character matches a route (404).
- :func:`parse_query_int` reads a query value, refusing anything else with the caller's coded 400, and
  :func:`has_control_characters` lets a store refuse text that no stored value can equal.
"""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter, Map, UnicodeConverter, ValidationError

from smki.core.errors import SmkiError

DATABASE_INTEGER_MAX = 2**31 - 1  # PostgreSQL INTEGER; SQLite's is wider
_MAX_DIGITS = len(str(DATABASE_INTEGER_MAX))
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))


class DatabaseIntegerConverter(IntegerConverter):
    """Flask's ``int`` converter, bounded to the database's range and to ASCII digits."""

    regex = r"[0-9]+"
    signed_regex = r"-?[0-9]+"

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = DATABASE_INTEGER_MAX, signed: bool = False) -> None:
        bounded = max if max is not None and max < DATABASE_INTEGER_MAX else DATABASE_INTEGER_MAX
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=bounded, signed=signed)

    def to_python(self, value: str) -> Any:
        # Checked before int(), which refuses numbers of more than 4,300 digits with a ValueError of its own.
        digits = value.lstrip("-").lstrip("0")
        if len(digits) > _MAX_DIGITS or (self.max is not None and int(value) > self.max):
            # The route has matched: say why nothing is there rather than werkzeug's generic "not found".
            raise NotFound(f"nothing has the number {value[:24]}{'...' if len(value) > 24 else ''}: numbers in "
                           f"this address run from 0 to {self.max}.")
        try:
            return super().to_python(value)
        except ValidationError:
            raise NotFound(f"{value[:24]!r} is not a number this address accepts.") from None


def parse_query_int(value: str | None, *, field: str, code: str, minimum: int = 0,
                    maximum: int = DATABASE_INTEGER_MAX) -> int | None:
    """A whole number from a query string (``None`` when absent or empty), or ``SmkiError(code)``
    naming the field and the range it accepts."""
    if value is None or value == "":
        return None
    digits = value[1:] if value.startswith("-") else value
    if not digits.isascii() or not digits.isdigit() or len(digits.lstrip("0")) > _MAX_DIGITS:
        raise _out_of_range(field, code, minimum, maximum)
    number = int(value)
    if not minimum <= number <= maximum:
        raise _out_of_range(field, code, minimum, maximum)
    return number


def _out_of_range(field: str, code: str, minimum: int, maximum: int) -> SmkiError:
    return SmkiError(code, f"{field} must be a whole number from {minimum} to {maximum}", field=field)


class PrintableTextConverter(UnicodeConverter):
    """Flask's default converter (any text up to a slash), without control characters such as NUL."""

    def __init__(self, map: Map, minlength: int = 1, maxlength: int | None = None,
                 length: int | None = None) -> None:
        super().__init__(map, minlength=minlength, maxlength=maxlength, length=length)
        self.regex = self.regex.replace("[^/]", "[^/\\x00-\\x1f\\x7f]", 1)


def has_control_characters(value: str) -> bool:
    return not _CONTROL.isdisjoint(value)
