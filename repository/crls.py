"""Signed CRLs and ARLs as the Repository keeps and serves them, and the index they are built from.

The Repository does not sign: :mod:`smki.publication` reads :meth:`RevocationLists.entries`, has the CA
sign, and stores the result here. The unique (list, number) constraint makes cRLNumber strictly
monotonic even if two publishers race: the loser's insert fails and it retries with the next number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from cryptography import x509
from sqlalchemy import func, select

from repository.models import PublishedRevocationList, RepositoryRevocation
from repository.store import utc
from smki.core.db import Database

LISTS = ("crl", "arl")


class IndexedRevocation(NamedTuple):
    """One CRL entry, in the shape the CA's ``sign_crl`` reads (serial, revoked_at, reason)."""

    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags | None  # None: unspecified, which RFC 5280 says to leave out


def _as_utc(value: object) -> dt.datetime:
    """A driver's raw timestamp (a datetime from psycopg, ISO text from SQLite) as an aware UTC datetime."""
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return utc(parsed)


@dataclass(frozen=True)
class PublishedList:
    revocation_list: str
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    entries: int
    covers_revocation_id: int
    der: bytes
    sha256: str
    published_at: dt.datetime

    @property
    def etag(self) -> str:
        return f'"{self.sha256[:32]}"'

    @classmethod
    def from_row(cls, row: PublishedRevocationList) -> PublishedList:
        return cls(row.revocation_list, row.number, utc(row.this_update), utc(row.next_update), row.entries,
                   row.covers_revocation_id, row.der, row.sha256, utc(row.published_at))


class RevocationLists:
    def __init__(self, database: Database) -> None:
        self.database = database

    def entries(self, revocation_list: str, after_id: int = 0) -> tuple[list[IndexedRevocation], int]:
        """The entries of one list from the revoked-certificates index (index rows after ``after_id``, in
        id order, read from the covering index alone), and the newest index row read.

        Read through the driver's own cursor and turned straight into CRL entries: at 100,000 entries any
        intermediate object per row costs more than the query. Revocation times repeat in bursts, so each
        distinct value is parsed once.
        """
        if revocation_list not in LISTS:
            raise ValueError(f"unknown revocation list {revocation_list!r}")
        with self.database.session() as session:
            cursor = session.connection().connection.cursor()
            try:
                cursor.execute("SELECT id, serial, revoked_at, reason FROM repository_revocation "
                               f"WHERE revocation_list = '{revocation_list}' AND id > {int(after_id)} "
                               "ORDER BY id")  # a name from LISTS and an int: nothing a caller can inject
                rows = cursor.fetchall()
            finally:
                cursor.close()
        times: dict[object, dt.datetime] = {}
        reasons = {name: None if name == "unspecified" else x509.ReasonFlags(name)
                   for name in {row[3] for row in rows}}
        entries = []
        for _id, serial, revoked_at, reason in rows:
            at = times.get(revoked_at)
            if at is None:
                at = times[revoked_at] = _as_utc(revoked_at)
            entries.append(IndexedRevocation(int(serial, 16), at, reasons[reason]))
        return entries, (rows[-1][0] if rows else after_id)

    def count(self, revocation_list: str) -> int:
        t = RepositoryRevocation
        with self.database.session() as session:
            return int(session.scalar(select(func.count()).select_from(t).where(t.revocation_list == revocation_list))
                       or 0)

    def pending(self, revocation_list: str, after_id: int) -> tuple[dt.datetime, dt.datetime] | None:
        """(first, last) recording times of revocations not yet on the published list, if any."""
        t = RepositoryRevocation
        with self.database.session() as session:
            first, last = session.execute(select(func.min(t.recorded_at), func.max(t.recorded_at))
                                          .where(t.revocation_list == revocation_list, t.id > after_id)).one()
        return (utc(first), utc(last)) if first is not None else None

    def latest(self, revocation_list: str) -> PublishedList | None:
        t = PublishedRevocationList
        with self.database.session() as session:
            row = session.scalars(select(t).where(t.revocation_list == revocation_list)
                                  .order_by(t.number.desc()).limit(1)).one_or_none()
            return PublishedList.from_row(row) if row else None

    def by_number(self, revocation_list: str, number: int) -> PublishedList | None:
        t = PublishedRevocationList
        with self.database.session() as session:
            row = session.scalars(select(t).where(t.revocation_list == revocation_list, t.number == number)
                                  ).one_or_none()
            return PublishedList.from_row(row) if row else None

    def history(self, revocation_list: str, limit: int = 20) -> list[PublishedList]:
        t = PublishedRevocationList
        with self.database.session() as session:
            rows = session.scalars(select(t).where(t.revocation_list == revocation_list)
                                   .order_by(t.number.desc()).limit(limit)).all()
            return [PublishedList.from_row(row) for row in rows]

    def next_number(self, revocation_list: str) -> int:
        t = PublishedRevocationList
        with self.database.session() as session:
            current = session.scalar(select(func.max(t.number)).where(t.revocation_list == revocation_list))
        return int(current or 0) + 1

    def store(self, revocation_list: str, number: int, this_update: dt.datetime, next_update: dt.datetime,
              entries: int, covers_revocation_id: int, der: bytes) -> PublishedList:
        """Raises IntegrityError when ``number`` was already used for this list."""
        row = PublishedRevocationList(
            revocation_list=revocation_list, number=number, this_update=this_update, next_update=next_update,
            entries=entries, covers_revocation_id=covers_revocation_id, der=der,
            sha256=hashlib.sha256(der).hexdigest(), published_at=dt.datetime.now(dt.UTC))
        with self.database.session() as session:
            session.add(row)
            session.flush()
            return PublishedList.from_row(row)
