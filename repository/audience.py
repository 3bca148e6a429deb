"""Who may read a lodged document: everyone entitled to use the Repository, or only some Repository roles.

A document's audience is ``all`` (the default) or a set of the roles below; a Repository user holds roles
as data on its row (``smki repository set-roles``), read afresh on every request, so a role withdrawn
takes effect at once. A reader outside a document's audience is told nothing of it: listings omit it and
retrieval answers the coded not-found a missing document gets (``RP:DOC7``), so its name cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterable

from repository.errors import RepositoryError

EVERYONE = "all"
# The bodies SEC Section L names as readers of restricted SMKI documents (L8.10: the full CSR variance report).
ROLES = ("sec_panel", "smki_pma")


def _parsed(names: Iterable[str], *, code: str, field: str) -> frozenset[str]:
    if isinstance(names, str):  # one role given alone, not its letters
        names = [names]
    chosen = frozenset(name.strip() for name in names if name.strip())
    unknown = sorted(chosen - set(ROLES))
    if unknown:
        raise RepositoryError(code, f"{', '.join(unknown)} is not a Repository role; the roles are "
                              f"{', '.join(ROLES)}", field=field)
    return chosen


def roles(names: Iterable[str]) -> frozenset[str]:
    """A Repository user's roles, checked against :data:`ROLES` (none is allowed)."""
    return _parsed(names, code="RP:ACC5", field="roles")


def audience(names: Iterable[str] | None) -> frozenset[str]:
    """A document's audience: empty for everyone (``None``, nothing, or ``all``), else a set of roles."""
    given = [names] if isinstance(names, str) else list(names or ())
    roles_given = [n for n in given if n.strip() != EVERYONE]
    if roles_given and len(roles_given) < len(given):
        raise RepositoryError("RP:DOC10", f"an audience is {EVERYONE} or some roles, not both", field="audience")
    return _parsed(roles_given, code="RP:DOC10", field="audience")


def stored(names: frozenset[str]) -> str:
    """The column value: ``all``, or the roles sorted and comma-separated (one spelling per set)."""
    return ",".join(sorted(names)) if names else EVERYONE


def loaded(value: str | None) -> frozenset[str]:
    return frozenset() if not value or value == EVERYONE else frozenset(value.split(","))


def may_read(document_audience: frozenset[str], reader_roles: frozenset[str]) -> bool:
    return not document_audience or bool(document_audience & reader_roles)


def visible(reader_roles: Iterable[str]) -> list[str]:
    """Every stored audience a reader with ``reader_roles`` may read: ``all``, and each set of roles that
    shares one with them. With a handful of roles the sets are few, so the check is an ``IN`` the database
    makes, and a document outside it is never even loaded."""
    held = frozenset(reader_roles) & set(ROLES)
    subsets = [frozenset(r for i, r in enumerate(ROLES) if mask >> i & 1) for mask in range(1, 1 << len(ROLES))]
    return [EVERYONE, *(stored(s) for s in subsets if s & held)]
