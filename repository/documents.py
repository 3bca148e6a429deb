"""Lodged documents: the SMKI document set, versioned.

The SMKI PMA and the Code Administrator lodge documents through an ARO; the RA checks who is asking and
then calls :meth:`DocumentStore.lodge`. Each lodging of a name adds a version; earlier versions stay
downloadable. A document is lodged for everyone entitled to use the Repository (audience ``all``) or for
some Repository roles only (:mod:`repository.audience`); every read takes the reader's roles, and a reader
outside a document's audience finds no such document. Every version of a name keeps the audience of the
first, so the versions a reader may see never differ from one version to the next.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError

from repository import audience as audiences
from repository.errors import RepositoryError, conflict, not_found
from repository.models import LodgedDocument
from repository.store import now_utc, utc
from smki.core.db import Database

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MEDIA_TYPES = ("application/pdf", "text/plain", "text/markdown", "text/html", "text/csv", "application/zip",
               "application/json",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
               "application/vnd.oasis.opendocument.text")


@dataclass(frozen=True)
class DocumentVersion:
    name: str
    version: int
    title: str
    media_type: str
    file_name: str
    size: int
    sha256: str
    lodged_by: str
    lodged_at: dt.datetime
    audience: frozenset[str] = frozenset()  # empty: everyone entitled to use the Repository

    @classmethod
    def from_row(cls, row: LodgedDocument) -> DocumentVersion:
        return cls(row.name, row.version, row.title, row.media_type, row.file_name, row.size, row.sha256,
                   row.lodged_by, utc(row.lodged_at), audiences.loaded(row.audience))

    def summary(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "title": self.title, "media_type": self.media_type,
                "file_name": self.file_name, "size": self.size, "sha256": self.sha256, "lodged_by": self.lodged_by,
                "lodged_at": self.lodged_at.isoformat().replace("+00:00", "Z"),
                "audience": sorted(self.audience) or audiences.EVERYONE}


def _readable(reader_roles: Iterable[str]) -> ColumnElement[bool]:
    return LodgedDocument.audience.in_(audiences.visible(reader_roles))


class DocumentStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def lodge(self, name: str, content: bytes, *, title: str, media_type: str, lodged_by: str,
              file_name: str | None = None, audience: Iterable[str] | None = None) -> DocumentVersion:
        """Lodge a new version of ``name``, for ``audience`` (Repository roles; ``None`` or ``all``: everyone)."""
        readers = audiences.audience(audience)
        if not NAME.match(name):
            raise RepositoryError("RP:DOC1", f"{name!r} is not a document name: use lower-case letters, digits "
                                  "and hyphens, for example 'smki-rapp'", field="name")
        if not content:
            raise RepositoryError("RP:DOC2", "the document is empty", field="content")
        if len(content) > MAX_DOCUMENT_BYTES:
            raise RepositoryError("RP:DOC3", f"the document is larger than {MAX_DOCUMENT_BYTES} bytes",
                                  field="content", status=413)
        if media_type not in MEDIA_TYPES:
            raise RepositoryError("RP:DOC4", f"documents are lodged as one of {', '.join(MEDIA_TYPES)}, not "
                                  f"{media_type!r}", field="media_type")
        if not title.strip():
            raise RepositoryError("RP:DOC5", "a document needs a title", field="title")
        for _attempt in range(3):
            try:
                with self.database.session() as session:
                    newest = session.execute(select(LodgedDocument.version, LodgedDocument.audience)
                                             .where(LodgedDocument.name == name)
                                             .order_by(LodgedDocument.version.desc()).limit(1)).first()
                    if newest is not None and audiences.loaded(newest.audience) != readers:
                        raise conflict("RP:DOC11", f"document {name!r} is lodged for "
                                       f"{newest.audience}; a new version keeps that audience (lodge a "
                                       "document of another name for other readers)")
                    row = LodgedDocument(name=name, version=(newest.version if newest else 0) + 1,
                                         title=title.strip()[:255], media_type=media_type,
                                         file_name=(file_name or name)[:255], content=content, size=len(content),
                                         sha256=hashlib.sha256(content).hexdigest(), lodged_by=lodged_by,
                                         lodged_at=now_utc(), audience=audiences.stored(readers))
                    session.add(row)
                    session.flush()
                    return DocumentVersion.from_row(row)
            except IntegrityError:
                continue  # two lodgings of the same name at once: take the next version
        raise conflict("RP:DOC6", f"document {name!r} is being lodged by someone else; retry")

    def latest(self, *, reader_roles: Iterable[str] = ()) -> list[DocumentVersion]:
        """The newest version of every document a reader holding ``reader_roles`` may read, by name."""
        newest = (select(LodgedDocument.name, func.max(LodgedDocument.version).label("version"))
                  .where(_readable(reader_roles)).group_by(LodgedDocument.name).subquery())
        with self.database.session() as session:
            rows = session.scalars(select(LodgedDocument).join(
                newest, (LodgedDocument.name == newest.c.name) & (LodgedDocument.version == newest.c.version))
                .order_by(LodgedDocument.name)).all()
            return [DocumentVersion.from_row(row) for row in rows]

    def versions(self, name: str, *, reader_roles: Iterable[str] = ()) -> list[DocumentVersion]:
        """Every version of ``name``, newest first; none if the reader may not read it."""
        if not NAME.match(name):
            return []  # no document has a name outside the pattern lodging enforces
        with self.database.session() as session:
            rows = session.scalars(select(LodgedDocument)
                                   .where(LodgedDocument.name == name, _readable(reader_roles))
                                   .order_by(LodgedDocument.version.desc())).all()
            return [DocumentVersion.from_row(row) for row in rows]

    def content(self, name: str, version: int | None = None, *,
                reader_roles: Iterable[str] = ()) -> tuple[DocumentVersion, bytes]:
        """A version of ``name`` (the newest if ``version`` is None) and its bytes; the same ``RP:DOC7`` for a
        document the reader may not read as for one that does not exist."""
        if not NAME.match(name):
            raise not_found("RP:DOC7", f"there is no document {name!r}")
        statement = select(LodgedDocument).where(LodgedDocument.name == name, _readable(reader_roles))
        statement = (statement.where(LodgedDocument.version == version) if version is not None
                     else statement.order_by(LodgedDocument.version.desc()).limit(1))
        with self.database.session() as session:
            row = session.scalars(statement).first()
            if row is None:
                raise not_found("RP:DOC7", f"there is no document {name!r}" +
                                (f" version {version}" if version is not None else ""))
            return DocumentVersion.from_row(row), row.content
