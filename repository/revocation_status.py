"""Whether certificates are revoked, as the Repository records it: a read-only port for other areas.

Issuance asks it, before the CA signs, whether the issuing CA (or any CA above it) has been revoked:
revocation is recorded here (:meth:`repository.store.CertificateRepository.revoke`), so this is where the
fact lives. A certificate that was never lodged cannot have been revoked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography import x509
from sqlalchemy import Connection, Dialect, Select, bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

from repository.certificates import _name_text, serial_text
from repository.models import RepositoryCertificate, RepositoryRevocation
from repository.store import utc
from smki.core.db import Database


@dataclass(frozen=True)
class RevokedCertificate:
    serial: str                # as the Repository writes serials (upper-case hex, whole octets)
    issuer: str                # RFC 4514
    reason: str                # RFC 5280 CRLReason name
    revoked_at: dt.datetime


class RevocationStatus:
    def __init__(self, database: Database) -> None:
        self.database = database
        # (serial, issuer) as the Repository writes them, per certificate asked about: the same few CA
        # certificates are asked about before every signing. The certificate is kept with its key, so the
        # id() it is found by cannot be reused.
        self._keys: dict[int, tuple[x509.Certificate, tuple[str, str]]] = {}

    def _key(self, certificate: x509.Certificate) -> tuple[str, str]:
        known = self._keys.get(id(certificate))
        if known is None or known[0] is not certificate:
            if len(self._keys) > 64:  # callers ask about a handful of CA certificates; never hold many
                self._keys.clear()
            known = self._keys[id(certificate)] = (
                certificate, (serial_text(certificate.serial_number), _name_text(certificate.issuer)))
        return known[1]

    def revoked(self, certificates: Sequence[x509.Certificate],
                connection: Connection | None = None) -> list[RevokedCertificate]:
        """The revocations of those of ``certificates`` that are revoked, in the order given; read on
        ``connection`` when the caller has one open (it only reads)."""
        wanted = [self._key(c) for c in certificates]
        if not wanted:
            return []
        if connection is None:
            with self.database.engine.connect() as own:
                return self.revoked(certificates, own)
        serials = sorted({serial for serial, _ in wanted})
        parameters = {f"serial{n}": serial for n, serial in enumerate(serials)}
        # Whether any is revoked (status R) first: the answer is almost always no, and that query is the
        # cheaper one, run on the driver's own cursor (compiled once by SQLAlchemy): this runs before every
        # signing, where SQLAlchemy's per-execution work costs several times the query itself. The
        # revocation's reason and date are read only for one that is.
        sql, arguments = _driver_statement(connection.dialect, len(serials), parameters)
        driver_error = connection.dialect.loaded_dbapi.Error
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql, arguments)
            revoked = [(serial, issuer) for serial, issuer in cursor.fetchall() if (serial, issuer) in wanted]
        except driver_error as error:  # raised as SQLAlchemy would have, so callers see one kind of error
            raise DBAPIError.instance(sql, arguments, error, driver_error, dialect=connection.dialect) from error
        finally:
            cursor.close()
        if not revoked:
            return []
        found = {(row.serial, row.issuer): RevokedCertificate(row.serial, row.issuer, row.reason, utc(row.revoked_at))
                 for row in connection.execute(_revoked_statement(len(serials), True), parameters)}
        return [found[key] for key in wanted if key in found]


_compiled: dict[tuple[str, int], SQLCompiler] = {}


def _driver_statement(dialect: Dialect, count: int, parameters: dict[str, Any]) -> tuple[str, Any]:
    """The status query as the driver's SQL text and arguments in its own parameter style."""
    compiled = _compiled.get((dialect.name, count))
    if compiled is None:
        made = _revoked_statement(count, False).compile(dialect=dialect)
        assert isinstance(made, SQLCompiler)  # a SELECT compiles to SQL
        compiled = _compiled[(dialect.name, count)] = made
    values = {**compiled.params, **parameters}
    if compiled.positiontup is not None:
        return compiled.string, tuple(values[name] for name in compiled.positiontup)
    return compiled.string, values


@cache
def _revoked_statement(count: int, detail: bool) -> Select[*tuple[Any, ...]]:
    """By serial alone, the leading column of the (serial, issuer) unique index: an index lookup whatever
    the planner's statistics say; the issuer is matched in Python. Built once per number of serials (a
    chain is one or two CAs): issuance asks before every signing."""
    certificate = RepositoryCertificate
    by_serial = certificate.serial.in_([bindparam(f"serial{n}") for n in range(count)])
    if not detail:
        return select(certificate.serial, certificate.issuer).where(by_serial, certificate.status == "R")
    return (select(certificate.serial, certificate.issuer, RepositoryRevocation.reason, RepositoryRevocation.revoked_at)
            .join(RepositoryRevocation, RepositoryRevocation.certificate_id == certificate.id).where(by_serial))
