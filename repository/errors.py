"""Repository refusals: ``RP:`` codes in the SEC style, each with the HTTP status the JSON API gives it."""

from __future__ import annotations

from dataclasses import dataclass

from smki.core.errors import SmkiError


@dataclass
class RepositoryError(SmkiError):
    status: int = 400


def not_found(code: str, message: str) -> RepositoryError:
    return RepositoryError(code, message, status=404)


def conflict(code: str, message: str) -> RepositoryError:
    return RepositoryError(code, message, status=409)
