"""EUI-64: the Entity Identifier of a Party's User Role, or a Device ID."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEX16 = re.compile(r"^[0-9A-Fa-f]{16}$")


@dataclass(frozen=True, order=True)
class Eui64:
    value: bytes

    def __post_init__(self) -> None:
        if len(self.value) != 8:
            raise ValueError(f"an EUI-64 is 8 octets, not {len(self.value)}")

    @classmethod
    def parse(cls, text: str) -> Eui64:
        """Accept ``90B3D51F30010000``, ``90-B3-D5-1F-30-01-00-00`` or ``90:b3:...`` forms."""
        compact = re.sub(r"[-: ]", "", text.strip())
        if not _HEX16.match(compact):
            raise ValueError(f"{text!r} is not an EUI-64: expected 16 hexadecimal digits")
        return cls(bytes.fromhex(compact))

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
