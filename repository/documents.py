"""Lodged documents: the SMKI document set, versioned.

The SMKI PMA and the Code Administrator lodge documents through an ARO; the RA checks who is asking and
then calls :meth:`DocumentStore.lodge`. Each lodging of a name adds a version; earlier versions stay
downloadable. Anyone entitled to use the Repository may list and download them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from repository.errors import RepositoryError, conflict, not_found
from repository.models import LodgedDocument
from repository.store import now_utc, utc
from smki.core.db import Database

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MEDIA_TYPES = ("application/pdf", "text/plain", "text/markdown", "text/html", "application/zip",
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

    @classmethod
    def from_row(cls, row: LodgedDocument) -> DocumentVersion:
        return cls(row.name, row.version, row.title, row.media_type, row.file_name, row.size, row.sha256,
                   row.lodged_by, utc(row.lodged_at))

    def summary(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "title": self.title, "media_type": self.media_type,
                "file_name": self.file_name, "size": self.size, "sha256": self.sha256, "lodged_by": self.lodged_by,
                "lodged_at": self.lodged_at.isoformat().replace("+00:00", "Z")}


class DocumentStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def lodge(self, name: str, content: bytes, *, title: str, media_type: str, lodged_by: str,
              file_name: str | None = None) -> DocumentVersion:
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
                    current = session.scalar(select(func.max(LodgedDocument.version))
                                             .where(LodgedDocument.name == name)) or 0
                    row = LodgedDocument(name=name, version=current + 1, title=title.strip()[:255],
                                         media_type=media_type, file_name=(file_name or name)[:255], content=content,
                                         size=len(content), sha256=hashlib.sha256(content).hexdigest(),
                                         lodged_by=lodged_by, lodged_at=now_utc())
                    session.add(row)
                    session.flush()
                    return DocumentVersion.from_row(row)
            except IntegrityError:
                continue  # two lodgings of the same name at once: take the next version
        raise conflict("RP:DOC6", f"document {name!r} is being lodged by someone else; retry")

    def latest(self) -> list[DocumentVersion]:
        """The newest version of every document, by name."""
        newest = (select(LodgedDocument.name, func.max(LodgedDocument.version).label("version"))
                  .group_by(LodgedDocument.name).subquery())
        with self.database.session() as session:
            rows = session.scalars(select(LodgedDocument).join(
                newest, (LodgedDocument.name == newest.c.name) & (LodgedDocument.version == newest.c.version))
                .order_by(LodgedDocument.name)).all()
            return [DocumentVersion.from_row(row) for row in rows]

    def versions(self, name: str) -> list[DocumentVersion]:
        if not NAME.match(name):
            return []  # no document has a name outside the pattern lodging enforces
        with self.database.session() as session:
            rows = session.scalars(select(LodgedDocument).where(LodgedDocument.name == name)
                                   .order_by(LodgedDocument.version.desc())).all()
            return [DocumentVersion.from_row(row) for row in rows]

    def content(self, name: str, version: int | None = None) -> tuple[DocumentVersion, bytes]:
        if not NAME.match(name):
            raise not_found("RP:DOC7", f"there is no document {name!r}")
        statement = select(LodgedDocument).where(LodgedDocument.name == name)
        statement = (statement.where(LodgedDocument.version == version) if version is not None
                     else statement.order_by(LodgedDocument.version.desc()).limit(1))
        with self.database.session() as session:
            row = session.scalars(statement).first()
            if row is None:
                raise not_found("RP:DOC7", f"there is no document {name!r}" +
                                (f" version {version}" if version is not None else ""))
            return DocumentVersion.from_row(row), row.content
