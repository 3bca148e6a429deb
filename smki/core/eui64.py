"""EUI-64: the Entity Identifier of a Party's User Role, or a Device ID."""

from __future__ import annotations

import re
from dataclasses import dataclass

from smki.core.errors import SmkiError

# The textual forms: 16 hex digits, or 8 pairs joined by one separator used throughout
# (``90-B3-D5-1F-30-01-00-00``, ``90:b3:...``, ``90 B3 ...``). Anything looser (mixed or doubled
# separators, a separator inside a pair) is more likely a mistyped identifier than a different form.
_FORMS = re.compile(r"[0-9A-Fa-f]{16}|[0-9A-Fa-f]{2}(?P<sep>[-: ])[0-9A-Fa-f]{2}(?:(?P=sep)[0-9A-Fa-f]{2}){6}")
INVALID_EUI64 = "FM:EUI1"


class InvalidEui64(SmkiError, ValueError):
    """Not an EUI-64; a ValueError as well, which is what callers have always caught."""

    def __str__(self) -> str:  # as the ValueError it was: callers put it into errors of their own codes
        return self.message


@dataclass(frozen=True, order=True)
class Eui64:
    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes) or len(self.value) != 8:
            raise InvalidEui64(INVALID_EUI64, f"an EUI-64 is 8 octets, not {self.value!r}")

    @classmethod
    def parse(cls, text: str) -> Eui64:
        """Accept ``90B3D51F30010000``, ``90-B3-D5-1F-30-01-00-00``, ``90:b3:...`` or ``90 B3 ...`` forms."""
        if not isinstance(text, str) or not _FORMS.fullmatch(text.strip()):
            raise InvalidEui64(INVALID_EUI64, f"{text!r} is not an EUI-64: expected 16 hexadecimal digits, "
                               "for example 90B3D51F30010000 or 90-B3-D5-1F-30-01-00-00")
        return cls(bytes.fromhex(re.sub(r"[-: ]", "", text.strip())))

    @property
    def hex(self) -> str:
        """Upper-case compact form, as the sandbox stores it: ``90B3D51F30010000``."""
        return self.value.hex().upper()

    @property
    def hyphenated(self) -> str:
        """The Repository interface form: ``90-B3-D5-1F-30-01-00-00``."""
        return "-".join(f"{b:02X}" for b in self.value)

    def __str__(self) -> str:
        return self.hyphenated
