"""The certificate store: every Organisation, Device, OCA and DCA certificate with its status.

Statuses (the Appendix O codes) and the only transitions the store allows:

=======  ==========  =====================================================================
code     meaning     reached from, and why
=======  ==========  =====================================================================
``P``    pending     lodged as pending: issued, not yet accepted by its Subscriber
``I``    in use      lodged in use (the default), or ``P``/``N`` -> ``I`` (accepted, back in use)
``N``    not in use  ``P``/``I`` -> ``N`` (the Subscriber says it is no longer installed or used)
``E``    expired     ``P``/``I``/``N`` -> ``E`` once notAfter has passed (the expiry sweep, or at
                     lodging a certificate that has already expired); terminal
``R``    revoked     ``P``/``I``/``N`` -> ``R`` only through :meth:`CertificateRepository.revoke`,
                     which also writes the revoked-certificates index; terminal
=======  ==========  =====================================================================

``E`` and ``R`` are terminal: an expired certificate is never revoked (there is nothing left to
withdraw) and a revoked one never returns to use.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repository.certificates import CertificateFacts, describe, normalise_serial, to_der
from repository.errors import RepositoryError, conflict, not_found
from repository.models import RepositoryCertificate, RepositoryRevocation
from repository.settings import RepositorySettings, default_settings
from smki.core.bounded import DATABASE_INTEGER_MAX, has_control_characters
from smki.core.db import Database, rows_affected
from smki.core.driver_sql import insert_rows
from smki.core.eui64 import Eui64
from smki.core.policyfiles.repository import CertificateKind
from smki.core.times import now_utc, utc

STATUSES = {"P": "pending", "I": "in use", "N": "not in use", "E": "expired", "R": "revoked"}
TRANSITIONS: dict[str, frozenset[str]] = {
    "P": frozenset({"I", "N", "E", "R"}),
    "I": frozenset({"N", "E", "R"}),
    "N": frozenset({"I", "E", "R"}),
    "E": frozenset(),
    "R": frozenset(),
}
LODGING_STATUSES = ("P", "I", "N")
USAGES = ("DS", "KA")
KINDS = ("organisation", "device", "oca", "dca")


@dataclass(frozen=True)
class CertificateRecord:
    id: int
    serial: str
    issuer: str
    subject: str
    kind: str
    status: str
    role: int | None
    usage: str | None
    subject_eui: str | None
    device_id: str | None
    manufacturing_flag: bool
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str
    lodged_at: dt.datetime
    lodged_by: str | None
    updated_at: dt.datetime
    der: bytes | None = None

    @classmethod
    def from_row(cls, row: Any, with_der: bool = True) -> CertificateRecord:
        return cls(id=row.id, serial=row.serial, issuer=row.issuer, subject=row.subject, kind=row.kind,
                   status=row.status, role=row.role, usage=row.usage, subject_eui=row.subject_eui,
                   device_id=row.device_id, manufacturing_flag=bool(row.manufacturing_flag),
                   not_before=utc(row.not_before), not_after=utc(row.not_after), sha256=row.sha256,
                   lodged_at=utc(row.lodged_at), lodged_by=row.lodged_by, updated_at=utc(row.updated_at),
                   der=row.der if with_der else None)

    @property
    def status_text(self) -> str:
        return STATUSES[self.status]

    @property
    def subject_eui_hyphenated(self) -> str | None:
        return Eui64.parse(self.subject_eui).hyphenated if self.subject_eui else None

    @property
    def device_id_hyphenated(self) -> str | None:
        return Eui64.parse(self.device_id).hyphenated if self.device_id else None

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields, without the certificate body."""
        out = asdict(self)
        out.pop("der")
        out.pop("id")
        for key in ("not_before", "not_after", "lodged_at", "updated_at"):
            out[key] = out[key].isoformat().replace("+00:00", "Z")
        out["status_text"] = self.status_text
        return out


@dataclass(frozen=True)
class LodgeResult:
    record: CertificateRecord
    created: bool


@dataclass(frozen=True)
class LodgeSummary:
    lodged: int
    already_present: int


@dataclass(frozen=True)
class Page:
    records: list[CertificateRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class Revocation:
    serial: str
    issuer: str
    kind: str
    revocation_list: str | None
    reason: str
    revoked_at: dt.datetime
    requested_by: str | None
    recorded_at: dt.datetime


@dataclass(frozen=True)
class SearchCriteria:
    serial: str | None = None
    issuer: str | None = None
    subject_eui: str | None = None
    device_id: str | None = None
    role: int | None = None
    usage: str | None = None
    status: str | None = None
    kind: str | None = None
    manufacturing_flag: bool | None = None
    not_before_from: dt.datetime | None = None
    not_before_until: dt.datetime | None = None
    not_after_from: dt.datetime | None = None
    not_after_until: dt.datetime | None = None
    lodged_from: dt.datetime | None = None
    lodged_until: dt.datetime | None = None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"c{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("c"):
            raise ValueError(cursor)
        position = int(text[1:])
        if not 0 <= position <= DATABASE_INTEGER_MAX:  # no row is numbered outside the database's range
            raise ValueError(cursor)
        return position
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise RepositoryError("RP:CUR1", "the cursor is not one this service issued; start the search "
                              "again without a cursor", field="cursor") from exc


def _eui(value: str, field: str) -> str:
    try:
        return Eui64.parse(value).hex
    except ValueError as exc:
        raise RepositoryError("RP:SRC1", f"{field} {value!r} is not an EUI-64: write 16 hexadecimal digits, "
                              "for example 90-B3-D5-1F-30-01-00-00", field=field) from exc


def _serial(value: str) -> str:
    try:
        return normalise_serial(value)
    except ValueError as exc:
        raise RepositoryError("RP:SRC2", f"{value!r} is not a certificate serial number: write it in "
                              "hexadecimal", field="serial") from exc


SEARCH_COLUMNS = [c for c in RepositoryCertificate.__table__.columns if c.name != "der"]


class ServiceRecord(NamedTuple):
    """What the Appendix O web service answers about a certificate: no more is read for it."""

    id: int
    serial: str
    kind: str
    status: str
    role: int | None
    usage: str | None
    subject_eui: str | None
    device_id: str | None
    manufacturing_flag: bool
    der: bytes | None = None


_t = RepositoryCertificate
# The columns of ServiceRecord, in its order; none needs converting from what either driver returns.
SERVICE_COLUMNS = (_t.id, _t.serial, _t.kind, _t.status, _t.role, _t.usage, _t.subject_eui, _t.device_id,
                   _t.manufacturing_flag)
SERVICE_COLUMNS_WITH_BODY = (*SERVICE_COLUMNS, _t.der)


@cache
def by_subject_criteria(column: str) -> ColumnElement[bool]:
    """The Appendix O search: the certificates of one Organisation subject (``column`` ``subject_eui``) or
    one Device (``device_id``), the EUI-64 bound as ``subject``, upper-case hex as :class:`Eui64` writes
    it. Answered from the ``(column, id)`` index in lodging order.

    No condition on ``kind``: lodging sets ``subject_eui`` on Organisation Certificates only and
    ``device_id`` on Device Certificates only, so it would select nothing more, and with it a database
    without statistics (a SQLite file never ANALYZEd) may read the ``(kind, id)`` index instead: every
    Device Certificate, for one search."""
    return _t.__table__.c[column] == bindparam("subject")


@cache
def by_serial_criteria() -> ColumnElement[bool]:
    """Appendix O retrieval: the certificates with the serial bound as ``serial`` (normalised)."""
    return _t.serial == bindparam("serial")


@cache
def by_serial_statement() -> Select[Any]:
    """Every certificate (body included) with the serial bound as ``serial`` (normalised), in lodging order."""
    t = RepositoryCertificate
    return select(*t.__table__.columns).where(t.serial == bindparam("serial")).order_by(t.id)


def normalised_serial(value: str) -> str:
    """A serial as the store keeps it, or ``RP:SRC2``."""
    return _serial(value)


# The columns :meth:`CertificateRepository._row` fills, in one order for bulk inserts.
LODGED_COLUMNS = ("serial", "issuer", "subject", "kind", "status", "role", "usage", "subject_eui", "device_id",
                  "manufacturing_flag", "not_before", "not_after", "sha256", "der", "lodged_at", "lodged_by",
                  "updated_at")


class CertificateRepository:
    """The Python API the RA lodges into and every interface reads from."""

    def __init__(self, database: Database, settings: RepositorySettings | None = None) -> None:
        self.database = database
        self.settings = settings or default_settings()

    # ----------------------------------------------------------------------------------- lodging
    def _row(self, facts: CertificateFacts, *, status: str, manufacturing_flag: bool,
             lodged_by: str | None, now: dt.datetime) -> dict[str, Any]:
        # lodging a certificate whose validity has already ended records it as expired
        effective = "E" if facts.not_after < now else status
        return {"serial": facts.serial, "issuer": facts.issuer, "subject": facts.subject[:255],
                "kind": facts.kind, "status": effective, "role": facts.role, "usage": facts.usage,
                "subject_eui": facts.subject_eui, "device_id": facts.device_id,
                "manufacturing_flag": manufacturing_flag, "not_before": facts.not_before,
                "not_after": facts.not_after, "sha256": facts.sha256, "der": facts.der, "lodged_at": now,
                "lodged_by": lodged_by, "updated_at": now}

    @staticmethod
    def _check_lodging_status(status: str) -> None:
        if status not in LODGING_STATUSES:
            raise RepositoryError("RP:LDG4", f"a certificate is lodged as P, I or N, not {status!r}; "
                                  "expiry and revocation are recorded afterwards", field="status")

    def lodge(self, der: bytes | str, *, status: str = "I", manufacturing_flag: bool = False,
              lodged_by: str | None = None, now: dt.datetime | None = None) -> LodgeResult:
        """Lodge one certificate (DER or PEM). Idempotent on (serial, issuer): lodging the same
        certificate again returns the existing record; a *different* certificate with the same
        serial and issuer is refused (``RP:LDG5``)."""
        self._check_lodging_status(status)
        facts = describe(to_der(der))
        now = now or now_utc()
        for _attempt in range(2):
            existing = self._existing_record(facts)
            if existing is not None:
                return LodgeResult(existing, False)
            try:
                with self.database.session() as session:
                    row = RepositoryCertificate(**self._row(facts, status=status,
                                                            manufacturing_flag=manufacturing_flag,
                                                            lodged_by=lodged_by, now=now))
                    session.add(row)
                    session.flush()
                    record = CertificateRecord.from_row(row)
                return LodgeResult(record, True)
            except IntegrityError:
                continue  # lodged concurrently by someone else: read theirs
        raise conflict("RP:LDG6", "the certificate could not be lodged; retry")  # pragma: no cover

    def _existing_record(self, facts: CertificateFacts) -> CertificateRecord | None:
        with self.database.session() as session:
            row = session.scalars(select(RepositoryCertificate).where(
                RepositoryCertificate.serial == facts.serial,
                RepositoryCertificate.issuer == facts.issuer)).one_or_none()
            if row is None:
                return None
            if row.sha256 != facts.sha256:
                raise _different_certificate(facts)
            return CertificateRecord.from_row(row)

    def lodge_many(self, certificates: Iterable[bytes | str | CertificateFacts], *, status: str = "I",
                   manufacturing_flag: bool = False, lodged_by: str | None = None,
                   now: dt.datetime | None = None, connection: Connection | Session | None = None,
                   fresh: bool = False) -> LodgeSummary:
        """Lodge a batch in one transaction: all of it, or (on any refusal) none of it.

        Items are DER or PEM, or :class:`CertificateFacts` a caller that made the certificate already knows
        (the CA's issuance path), so that nothing is parsed again. With ``connection`` the rows are written
        in the caller's transaction (which then commits or rolls back the whole). A certificate already
        lodged is left as it is; a *different* one with the same serial and issuer refuses the batch.
        ``fresh``: the certificates were minted a moment ago by the CA that lodges them, so none can be
        lodged yet; they are inserted without asking, and a serial already lodged under the same issuer
        raises ``IntegrityError`` (the caller's unit is then retried with new serials).
        """
        self._check_lodging_status(status)
        now = now or now_utc()
        batch: dict[tuple[str, str], CertificateFacts] = {}
        for item in certificates:
            facts = item if isinstance(item, CertificateFacts) else describe(to_der(item))
            key = (facts.serial, facts.issuer)
            earlier = batch.get(key)
            if earlier is not None and earlier.sha256 != facts.sha256:
                raise _different_certificate(facts)
            batch[key] = facts
        if not batch:
            return LodgeSummary(lodged=0, already_present=0)
        rows = [self._row(facts, status=status, manufacturing_flag=manufacturing_flag, lodged_by=lodged_by, now=now)
                for facts in batch.values()]
        if connection is not None:
            lodged = self._insert(connection, batch, rows, fresh)
        else:
            with self.database.session() as session:
                lodged = self._insert(session, batch, rows, fresh)
        return LodgeSummary(lodged=lodged, already_present=len(batch) - lodged)

    def _insert(self, connection: Connection | Session, batch: dict[tuple[str, str], CertificateFacts],
                rows: list[dict[str, Any]], fresh: bool) -> int:
        if fresh:
            # No row can exist for them yet: COPY on PostgreSQL, the driver's executemany elsewhere.
            bind = connection.connection() if isinstance(connection, Session) else connection
            insert_rows(bind, cast(Table, RepositoryCertificate.__table__), LODGED_COLUMNS, rows)
            return len(rows)
        return self._insert_new(connection, batch, rows)

    @staticmethod
    def _insert_new(connection: Connection | Session, batch: dict[tuple[str, str], CertificateFacts],
                    rows: list[dict[str, Any]]) -> int:
        """Insert the rows whose (serial, issuer) is not lodged yet; returns how many. The unique index
        decides (INSERT .. ON CONFLICT DO NOTHING), so there is no separate duplicate check and no query
        whose plan depends on the table's statistics; only the rows it skipped are read back, to refuse a
        different certificate under a lodged serial."""
        table = cast(Table, RepositoryCertificate.__table__)
        bind = connection.get_bind() if isinstance(connection, Session) else connection
        statement = (postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert)(table)
        statement = statement.on_conflict_do_nothing(index_elements=[table.c.serial, table.c.issuer])
        inserted = {(serial, issuer) for serial, issuer in connection.execute(
            statement.returning(table.c.serial, table.c.issuer), rows)}
        for key in batch.keys() - inserted:
            lodged = connection.execute(select(table.c.sha256).where(
                table.c.serial == key[0], table.c.issuer == key[1])).scalar_one()
            if lodged != batch[key].sha256:
                raise _different_certificate(batch[key])
        return len(inserted)

    # ----------------------------------------------------------------------------------- reading
    def find(self, serial: str) -> list[CertificateRecord]:
        """Every certificate with this serial (one, unless two CAs happened to use the same serial)."""
        with self.database.session() as session:
            rows = session.execute(by_serial_statement(), {"serial": _serial(serial)}).all()
        return [CertificateRecord.from_row(row) for row in rows]


    def find_many(self, serials: Iterable[str]) -> dict[str, list[CertificateRecord]]:
        """Every certificate with each of these serials, by normalised serial, in one query: for callers that
        read many certificates at once (the estate verifying a chunk of devices' responses)."""
        wanted = sorted({_serial(serial) for serial in serials})
        found: dict[str, list[CertificateRecord]] = {serial: [] for serial in wanted}
        if not wanted:
            return found
        t = RepositoryCertificate
        with self.database.session() as session:
            rows = session.execute(select(*t.__table__.columns).where(t.serial.in_(wanted)).order_by(t.id)).all()
        for row in rows:
            found[row.serial].append(CertificateRecord.from_row(row))
        return found

    def get(self, serial: str, issuer: str | None = None) -> CertificateRecord | None:
        records = [r for r in self.find(serial) if issuer is None or r.issuer == issuer]
        if len(records) > 1:
            raise conflict("RP:SER2", f"{len(records)} certificates have serial {records[0].serial}; "
                           "give the issuer as well")
        return records[0] if records else None

    def require(self, serial: str, issuer: str | None = None) -> CertificateRecord:
        record = self.get(serial, issuer)
        if record is None:
            raise not_found("RP:SER1", f"no certificate with serial {serial} is in the Repository")
        return record

    def search(self, criteria: SearchCriteria | None = None, *, limit: int = 100, cursor: str | None = None,
               **filters: Any) -> Page:
        """Filtered search in lodging order; ``next_cursor`` fetches the following page."""
        criteria = criteria or SearchCriteria(**filters)
        limit = max(1, min(limit, int(self.settings.web_service["max_page_size"])))
        statement = self._filtered(select(*SEARCH_COLUMNS), criteria)
        if cursor:
            statement = statement.where(RepositoryCertificate.id > decode_cursor(cursor))
        statement = statement.order_by(RepositoryCertificate.id).limit(limit + 1)
        with self.database.session() as session:
            rows = session.execute(statement).all()
        records = [CertificateRecord.from_row(row, with_der=False) for row in rows[:limit]]
        next_cursor = encode_cursor(records[-1].id) if len(rows) > limit else None
        return Page(records, next_cursor)

    def _filtered(self, statement: Select[Any], c: SearchCriteria) -> Select[Any]:
        t = RepositoryCertificate
        conditions = []
        if c.serial:
            conditions.append(t.serial == _serial(c.serial))
        if c.issuer:
            if has_control_characters(c.issuer):
                raise RepositoryError("RP:SRC9", "issuer is an RFC 4514 name, such as CN=Z1,OU=07; it has no "
                                      "control characters", field="issuer")
            conditions.append(t.issuer == c.issuer)
        if c.subject_eui:
            conditions.append(t.subject_eui == _eui(c.subject_eui, "subject_eui"))
        if c.device_id:
            conditions.append(t.device_id == _eui(c.device_id, "device_id"))
        if c.role is not None:
            conditions.append(t.role == c.role)
        if c.usage:
            if c.usage not in USAGES:
                raise RepositoryError("RP:SRC3", f"usage is DS or KA, not {c.usage!r}", field="usage")
            conditions.append(t.usage == c.usage)
        if c.status:
            if c.status not in STATUSES:
                raise RepositoryError("RP:SRC4", f"status is one of P, I, N, E, R, not {c.status!r}",
                                      field="status")
            conditions.append(t.status == c.status)
        if c.kind:
            if c.kind not in KINDS:
                raise RepositoryError("RP:SRC5", f"kind is one of {', '.join(KINDS)}, not {c.kind!r}",
                                      field="kind")
            conditions.append(t.kind == c.kind)
        if c.manufacturing_flag is not None:
            conditions.append(t.manufacturing_flag == c.manufacturing_flag)
        for column, low, high in ((t.not_before, c.not_before_from, c.not_before_until),
                                  (t.not_after, c.not_after_from, c.not_after_until),
                                  (t.lodged_at, c.lodged_from, c.lodged_until)):
            if low is not None:
                conditions.append(column >= low)
            if high is not None:
                conditions.append(column < high)
        return statement.where(and_(*conditions)) if conditions else statement

    def count(self, **filters: Any) -> int:
        statement = self._filtered(select(func.count()).select_from(RepositoryCertificate), SearchCriteria(**filters))
        with self.database.session() as session:
            return int(session.scalar(statement) or 0)

    def changed_between(self, since: dt.datetime | None, until: dt.datetime,
                        batch: int = 5000) -> Iterator[CertificateRecord]:
        """Every certificate lodged or changed in [since, until), in id order (for extracts)."""
        t = RepositoryCertificate
        last = 0
        while True:
            statement = select(t).where(t.id > last, t.updated_at < until)
            if since is not None:
                statement = statement.where(t.updated_at >= since)
            with self.database.session() as session:
                rows = session.scalars(statement.order_by(t.id).limit(batch)).all()
                records = [CertificateRecord.from_row(row) for row in rows]
            if not records:
                return
            yield from records
            last = records[-1].id

    # ----------------------------------------------------------------------------------- status
    def set_status(self, serial: str, status: str, *, issuer: str | None = None,
                   now: dt.datetime | None = None) -> CertificateRecord:
        """Move a certificate along the documented transitions (``R`` only through :meth:`revoke`)."""
        if status == "R":
            raise RepositoryError("RP:STA3", "revocation is recorded with revoke(), which also indexes it "
                                  "for the CRL", field="status")
        if status not in STATUSES:
            raise RepositoryError("RP:STA1", f"status is one of P, I, N, E, R, not {status!r}", field="status")
        now = now or now_utc()
        record = self.require(serial, issuer)
        if status == record.status:
            return record
        if status not in TRANSITIONS[record.status]:
            raise conflict("RP:STA2", f"certificate {record.serial} is {record.status} "
                           f"({record.status_text}); it cannot become {status} ({STATUSES[status]})")
        if status == "E" and record.not_after > now:
            raise conflict("RP:STA4", f"certificate {record.serial} is valid until "
                           f"{record.not_after.isoformat()}; it cannot be marked expired before then")
        with self.database.session() as session:
            changed = rows_affected(session.execute(
                update(RepositoryCertificate)
                .where(RepositoryCertificate.id == record.id, RepositoryCertificate.status == record.status)
                .values(status=status, updated_at=now)))
        if changed != 1:
            raise conflict("RP:STA5", f"certificate {record.serial} changed while this request was made; "
                           "read it again and retry")
        return self.require(record.serial, record.issuer)

    def expire_due(self, now: dt.datetime | None = None) -> int:
        """The expiry sweep: P, I and N certificates past notAfter become E (uses the notAfter index)."""
        now = now or now_utc()
        t = RepositoryCertificate
        with self.database.session() as session:
            return rows_affected(session.execute(
                update(t).where(t.not_after < now, or_(t.status == "P", t.status == "I", t.status == "N"))
                .values(status="E", updated_at=now).execution_options(synchronize_session=False)))

    # ----------------------------------------------------------------------------------- revocation
    def reason_code(self, reason: str) -> str:
        try:
            return self.settings.revocation_reasons[reason]
        except KeyError as exc:
            raise RepositoryError("RP:REV1", f"{reason!r} is not a revocation reason; use one of "
                                  f"{', '.join(self.settings.revocation_reasons)}", field="reason") from exc

    def revoke(self, serial: str, reason: str, at: dt.datetime | None = None, requested_by: str | None = None,
               *, issuer: str | None = None, now: dt.datetime | None = None) -> Revocation:
        """Revoke at once: status ``R`` and a row in the revoked-certificates index, in one transaction.
        ``at`` is the revocation date the CRL states (default: now). The CRL or ARL that lists it is
        published later by the publisher, never in this call."""
        code = self.reason_code(reason)
        now = now or now_utc()
        at = (at or now).replace(microsecond=0)  # a CRL states revocation dates in whole seconds
        record = self.require(serial, issuer)
        if record.status == "R":
            raise conflict("RP:REV2", f"certificate {record.serial} is already revoked")
        if "R" not in TRANSITIONS[record.status]:
            raise conflict("RP:REV3", f"certificate {record.serial} is {record.status} ({record.status_text}) "
                           "and cannot be revoked")
        revocation_list = self.settings.revocation_lists.get(cast(CertificateKind, record.kind))
        try:
            with self.database.session() as session:
                changed = rows_affected(session.execute(
                    update(RepositoryCertificate)
                    .where(RepositoryCertificate.id == record.id, RepositoryCertificate.status == record.status)
                    .values(status="R", updated_at=now)))
                if changed != 1:
                    raise conflict("RP:STA5", f"certificate {record.serial} changed while this request was made; "
                                   "read it again and retry")
                session.add(RepositoryRevocation(
                    certificate_id=record.id, serial=record.serial, issuer=record.issuer,
                    revocation_list=revocation_list, reason=code, revoked_at=at, requested_by=requested_by,
                    recorded_at=now))
        except IntegrityError as exc:
            raise conflict("RP:REV2", f"certificate {record.serial} is already revoked") from exc
        return Revocation(record.serial, record.issuer, record.kind, revocation_list, code, at, requested_by, now)

    def revocations(self, revocation_list: str | None = None, *, since: dt.datetime | None = None,
                    until: dt.datetime | None = None) -> list[Revocation]:
        t = RepositoryRevocation
        statement = select(t, RepositoryCertificate.kind).join(
            RepositoryCertificate, RepositoryCertificate.id == t.certificate_id)
        if revocation_list is not None:
            statement = statement.where(t.revocation_list == revocation_list)
        if since is not None:
            statement = statement.where(t.recorded_at >= since)
        if until is not None:
            statement = statement.where(t.recorded_at < until)
        with self.database.session() as session:
            return [Revocation(r.serial, r.issuer, kind, r.revocation_list, r.reason, utc(r.revoked_at),
                               r.requested_by, utc(r.recorded_at))
                    for r, kind in session.execute(statement.order_by(t.id)).all()]


def _different_certificate(facts: CertificateFacts) -> RepositoryError:
    return conflict("RP:LDG5", f"a different certificate with serial {facts.serial} from issuer "
                    f"{facts.issuer} is already lodged; a serial identifies one certificate per issuer")
