"""Unusable input: a coded error and exit status 2, never a stack trace."""

from __future__ import annotations

from smki.core.errors import SmkiError


class LintInputError(SmkiError):
    """A file or option the linter cannot work with (``LN:IN`` codes)."""
