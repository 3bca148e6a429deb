"""Errors as values with SEC-style codes and a sentence a person can act on.

Code families follow SEC Appendix M: ``FM:`` format, ``CR:`` CSR content, ``IN:`` ineligible,
``UD:`` unknown device, ``CA:`` CA or issuance, ``WF:`` workflow. The pattern ``[A-Z]{2}:[A-Za-z0-9]+``
with at most 10 characters is the one Appendix M responses use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field

CODE_PATTERN = re.compile(r"^[A-Z]{2}:[A-Za-z0-9]+$")


def check_code(code: str) -> None:
    """Refuse a code that is not in the SEC style (a programming error, not a caller's)."""
    if not CODE_PATTERN.match(code) or len(code) > 10:
        raise ValueError(f"code {code!r} is not in the SEC style")


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    field: str | None = None

    def __post_init__(self) -> None:
        check_code(self.code)


@dataclass
class SmkiError(Exception):
    """A refusal the caller can act on. ``code`` is stable; ``message`` is for people."""

    code: str
    message: str
    field: str | None = None
    details: list[Finding] = dataclass_field(default_factory=list)

    def __post_init__(self) -> None:
        check_code(self.code)
        super().__init__(f"{self.code} {self.message}")

    def __str__(self) -> str:
        return f"{self.code} {self.message}"

    @property
    def family(self) -> str:
        return self.code.split(":", 1)[0]


class CsrRejected(SmkiError):
    """The CSR cannot be certified as submitted; nothing was issued."""


class IssuanceFailed(SmkiError):
    """The CA could not issue; a retry may succeed (``CA:`` family)."""


class ConfigurationError(SmkiError):
    """The instance or the policies are not usable."""
