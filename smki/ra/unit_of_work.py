"""The Repository's writes as part of the RA's own unit of work.

A decision that also changes the Repository (a Repository user for an ARO, credentials withdrawn, a
revocation recorded) must take effect whole or not at all. The RA and the Repository share one database,
so the Repository's calls run inside the RA's open transaction: each of their units of work becomes a
savepoint of it, and a refusal by the Repository rolls the whole decision back. (Run in a unit of their
own they could not: on SQLite the RA's unit holds the database's writer lock until it commits.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from smki.core.db import Database


class WithinUnitOfWork(Database):
    """A :class:`Database` whose every ``session()`` is a savepoint of one open session: nothing it
    writes commits until that session's unit of work does, and nothing of it remains if that unit fails."""

    def __init__(self, session: Session) -> None:  # no engine of its own: it borrows the open session
        bind = session.get_bind()
        self.url = str(bind.engine.url)
        self.engine = bind.engine
        self._open = session

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._open.begin_nested():
            yield self._open
