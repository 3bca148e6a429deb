"""Issuance: the one path by which certificates come into being, and the ledger that records them.

Every certificate takes it: the RA's releases, the operator's ``smki ca issue``, the Device CSR services'
batches and ad hoc requests, and ``smki init``'s CA certificates. Two steps, so that a caller can do the
slow one outside its transaction and the quick one inside:

1. :meth:`IssuanceService.sign` -- refuse if the issuing CA (or any CA above it) is revoked or outside its
   validity; build and sign each certificate; lint it before release where ``policies/issuance.yaml``
   says so. Nothing is recorded and nothing is released.
2. :meth:`IssuanceService.record` -- in the caller's transaction, each Device Certificate takes its place in
   the per-device tally (refused once the Device ID has reached its limit) and the ledger rows are
   inserted. Only what this records may be released, and only after the caller commits.

Batching is a property of the path: both steps take many requests and report, per request, a certificate
or a coded refusal (:class:`NotIssued`). :meth:`IssuanceService.issue_many` runs both in a transaction of
its own and issues all or nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any, Protocol, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection, Dialect, Executable, Table, bindparam, exists, insert, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

from repository.revocation_status import RevocationStatus, RevokedCertificate
from smki.ca.authority import CertificationAuthority
from smki.ca.builder import CertificateRequest
from smki.ca.identifiers import serial_hex
from smki.core.db import Database
from smki.core.driver_sql import driver_statement, insert_rows
from smki.core.errors import ConfigurationError, CsrRejected, IssuanceFailed, SmkiError
from smki.core.policy import Policies
from smki.csr import CsrKind, ValidatedCsr, received_digest, validate
from smki.models import CsrRejection, DeviceCertificateTally, IssuanceRecord

SERIAL_ATTEMPTS = 3
DEVICE_LIMIT = "CA:ANOM1"        # the Device ID has reached its limit: an issuance anomaly for the RA
ISSUER_REVOKED = "CA:E208"
ISSUER_NOT_VALID = "CA:E209"


class DeviceLimitReached(IssuanceFailed):
    """The certificate would take its Device ID to the limit; not issued (``ISSUANCE_ANOMALY``)."""

    status = 409  # a state of the Device ID that the service desk resolves, not a failure of the service


class IssuerUnusable(IssuanceFailed):
    """The issuing CA is revoked or outside its validity: it signs nothing until the hierarchy is renewed."""

    status = 503  # the service cannot issue under this CA at all; no request can succeed until it is renewed


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    der: bytes
    serial: str
    profile: str
    csr: ValidatedCsr | None
    # The ledger row this certificate is recorded with (column values), built as it was signed.
    ledger: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class NotIssued:
    """A request the path refused after the RA approved it, with the coded reason; nothing of it was recorded."""

    request: CertificateRequest
    csr: ValidatedCsr | None
    error: SmkiError

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def message(self) -> str:
        return self.error.message


Outcome = IssuedCertificate | NotIssued


class RevocationPort(Protocol):
    """Where the path learns that a CA certificate was revoked (the Repository's record, read only)."""

    def revoked(self, certificates: Sequence[x509.Certificate],
                connection: Connection | None = None) -> list[RevokedCertificate]: ...


def request_for(csr: ValidatedCsr) -> CertificateRequest:
    if csr.kind == "device":
        return CertificateRequest("device", csr.public_key, key_usage=csr.key_usage, device_id=csr.device_id)
    assert csr.role is not None
    return CertificateRequest("organisation", csr.public_key, key_usage=csr.key_usage,
                              remote_party_role=csr.role.ou, entity_identifier=csr.entity_identifier,
                              trading_name=csr.trading_name)


def ledger_row(certificate: x509.Certificate, request: CertificateRequest, *, issuer_name: str,
               channel: str, requested_by: str | None, csr_sha256: str | None,
               now: dt.datetime, der: bytes | None = None) -> dict[str, Any]:
    """The ledger row for one certificate, as column values (inserted in bulk by :func:`record_issuance`)."""
    subject = request.device_id or request.entity_identifier
    role = request.remote_party_role
    return {
        "serial": serial_hex(certificate.serial_number), "profile": request.profile, "issuer_name": issuer_name,
        "subject_id": subject.hex if subject else None, "key_usage": request.key_usage,
        "role_code": int(role, 16) if role else None, "channel": channel, "requested_by": requested_by,
        "csr_sha256": csr_sha256, "tbs_sha256": hashlib.sha256(certificate.tbs_certificate_bytes).hexdigest(),
        "certificate_der": der if der is not None else certificate.public_bytes(serialization.Encoding.DER),
        "issued_at": now,
    }


@cache
def _tally_upsert(dialect: str, limit: int | None, returning: bool) -> Executable:
    """The conditional increment of a device's tally, built once per dialect and limit (composing the
    statement costs more than running it for one certificate)."""
    table = cast(Table, DeviceCertificateTally.__table__)
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    total = table.c.issued + statement.excluded.issued
    upsert = statement.on_conflict_do_update(index_elements=[table.c.device_id], set_={"issued": total},
                                             where=total < limit if limit is not None else None)
    return upsert.returning(table.c.device_id) if returning else upsert


def _increment(connection: Connection, wanted: dict[str, int], limit: int | None) -> set[str]:
    """Add ``wanted[device]`` to each device's tally where the sum stays under ``limit``; returns the
    devices whose increment was made. A conditional upsert: the row lock it takes on PostgreSQL is that
    device's alone, held to commit, so a concurrent writer for the same device waits and then re-evaluates
    the condition against the committed count."""
    if not wanted:
        return set()
    dialect = connection.dialect.name
    if len(wanted) == 1 and dialect == "sqlite":
        # One device (every certificate issued on its own): SQLite's count of changed rows says whether it
        # was made, without a result to read (psycopg reports no count here: PostgreSQL reads RETURNING).
        [(device, count)] = wanted.items()
        made = connection.execute(_tally_upsert(dialect, limit, False), {"device_id": device, "issued": count})
        return {device} if made.rowcount == 1 else set()
    # executemany with RETURNING: SQLAlchemy sends it as multi-row statements of one cached form. Devices
    # in sorted order: one lock order for every writer, so two batches cannot deadlock on PostgreSQL.
    rows = [{"device_id": d, "issued": wanted[d]} for d in sorted(wanted)]
    return set(connection.execute(_tally_upsert(dialect, limit, True), rows[0] if len(rows) == 1 else rows)
               .scalars())


def record_issuance(connection: Connection | Session, rows: Sequence[dict[str, Any]], *,
                    device_limit: int | None = None) -> list[int]:
    """Record ledger rows in the caller's transaction: the one function through which the ledger is written.

    Each Device Certificate row first takes its place in its Device ID's tally; a row that would take the
    tally to ``device_limit`` (fewer than that many may exist) is refused and not inserted. Returns the
    positions of the refused rows. The ledger is written in bulk on the driver (``COPY`` on PostgreSQL,
    ``executemany`` elsewhere: :func:`smki.core.driver_sql.insert_rows`): at batch scale ORM objects, and
    SQLAlchemy's per-row parameter handling, cost more than the signing.
    """
    if isinstance(connection, Session):
        connection = connection.connection()  # the session's own connection, in its transaction
    if len(rows) == 1:
        return _record_one(connection, rows[0], device_limit)
    per_device = Counter(row["subject_id"] for row in rows if row["profile"] == "device" and row["subject_id"])
    refused: list[int] = []
    if per_device:
        # A device that could not take all of this unit's certificates at once is found in the single bulk
        # statement; it is then offered them one at a time, so it gets exactly as many as still fit.
        fits = {d: n for d, n in per_device.items() if device_limit is None or n < device_limit}
        granted = {d: per_device[d] for d in _increment(connection, fits, device_limit)}
        for device in sorted(set(per_device) - set(granted)):
            granted[device] = 0
            while granted[device] < per_device[device] and _increment(connection, {device: 1}, device_limit):
                granted[device] += 1
        if any(granted[d] < per_device[d] for d in per_device):
            for position, row in enumerate(rows):
                device = row["subject_id"]
                if row["profile"] == "device" and device:
                    if granted[device] > 0:
                        granted[device] -= 1
                    else:
                        refused.append(position)
    if refused:
        skipped = set(refused)
        rows = [row for position, row in enumerate(rows) if position not in skipped]
    insert_rows(connection, cast(Table, IssuanceRecord.__table__), LEDGER_COLUMNS, rows)
    return refused


def _record_one(connection: Connection, row: dict[str, Any], device_limit: int | None) -> list[int]:
    """:func:`record_issuance` for a unit of one certificate (every ``issue_from_csr``): the same tally and
    ledger rows in the fewest statements, run on the driver's cursor. On PostgreSQL the tally's conditional
    increment and the ledger insert are one statement (the insert selects from the increment's RETURNING),
    so a certificate costs one round trip where the tally alone would add a second."""
    device = row["subject_id"] if row["profile"] == "device" else None
    if device is None:
        driver_statement("issuance.ledger", connection, _ledger_statement).execute(connection, row)
        return []
    if device_limit is not None and device_limit <= 1:
        return [0]  # not even a first certificate fits
    if connection.dialect.name == "postgresql":
        counted = driver_statement(f"issuance.counted-ledger.{device_limit}", connection,
                                   partial(_counted_ledger_statement, device_limit))
        inserted, _ = counted.execute(connection, row)
        return [] if inserted == 1 else [0]
    tally = driver_statement(f"issuance.tally.{device_limit}", connection, lambda dialect: (
        cast(ClauseElement, _tally_upsert(dialect.name, device_limit, False)), None))
    made, _ = tally.execute(connection, {"device_id": device, "issued": 1})
    if made != 1:
        return [0]
    driver_statement("issuance.ledger", connection, _ledger_statement).execute(connection, row)
    return []


LEDGER_COLUMNS = ("serial", "profile", "issuer_name", "subject_id", "key_usage", "role_code", "channel",
                  "requested_by", "csr_sha256", "tbs_sha256", "certificate_der", "issued_at")


def _ledger_statement(_dialect: Dialect) -> tuple[ClauseElement, Sequence[str]]:
    return insert(cast(Table, IssuanceRecord.__table__)), LEDGER_COLUMNS


def _counted_ledger_statement(limit: int | None, _dialect: Dialect) -> tuple[ClauseElement, None]:
    """PostgreSQL: the tally's conditional increment as a data-modifying CTE, and the ledger row inserted only
    if the increment was made (its RETURNING row exists); the count of inserted rows says which."""
    tally, ledger = cast(Table, DeviceCertificateTally.__table__), cast(Table, IssuanceRecord.__table__)
    upsert = postgresql.insert(tally).values(device_id=bindparam("subject_id", type_=tally.c.device_id.type),
                                             issued=literal_column("1"))
    total = tally.c.issued + upsert.excluded.issued
    counted = upsert.on_conflict_do_update(index_elements=[tally.c.device_id], set_={"issued": total},
                                           where=total < limit if limit is not None else None
                                           ).returning(tally.c.device_id).cte("counted")
    values = select(*[bindparam(name, type_=ledger.c[name].type) for name in LEDGER_COLUMNS]) \
        .where(exists(select(counted.c.device_id)))
    return insert(ledger).from_select(list(LEDGER_COLUMNS), values), None


def device_certificate_counts(session: Session, device_ids: Collection[str]) -> dict[str, int]:
    """How many Device Certificates the ledger holds for each Device ID (hex); absent IDs are left out."""
    wanted = sorted(set(device_ids))
    counts: dict[str, int] = {}
    table = DeviceCertificateTally.__table__
    for start in range(0, len(wanted), 900):  # stay under every driver's bound-parameter limit
        counts.update({device: issued for device, issued in session.execute(
            select(table.c.device_id, table.c.issued).where(table.c.device_id.in_(wanted[start:start + 900])))})
    return counts


def release_check(certificate: x509.Certificate, profile: str, policies: Policies, der: bytes | None = None) -> None:
    """Refuse to release a certificate the SMKI profile linter finds fault with."""
    from smki.lint.linter import lint_one
    from smki.lint.source import LoadedCertificate

    der = der if der is not None else certificate.public_bytes(serialization.Encoding.DER)
    report = lint_one(LoadedCertificate("issued", 1, 1, der), policies, profile=profile)
    if report.errors:
        found = "; ".join(f"{f.code} {f.message}" for f in report.errors)
        raise IssuanceFailed("CA:E207", f"the {profile} certificate the CA produced fails the SMKI profile "
                             f"({found}); it was not released. This is an issuance anomaly: the RA must "
                             "correct the profile before retrying.")


@dataclass(frozen=True)
class Signed:
    """Certificates signed (and linted) for one unit of requests, not yet recorded: nothing of it may be
    released before :meth:`IssuanceService.record` has recorded it and the caller has committed."""

    outcomes: list[Outcome]
    channel: str
    requested_by: str | None


class IssuanceService:
    def __init__(self, ca: CertificationAuthority, database: Database, policies: Policies, *,
                 device_limit: int | None = None, revocations: RevocationPort | None = None) -> None:
        self.ca = ca
        self.database = database
        self.policies = policies
        self.linted_profiles = policies.issuance.linted_profiles  # policies/issuance.yaml lint_before_release
        self._device_limit = device_limit
        self.revocations = revocations or RevocationStatus(database)
        # Per profile and hierarchy version: the CA certificates above it, with their validity (read again when the
        # hierarchy is rotated, by this process or another: smki.ca_rotation).
        self._chains: dict[tuple[str, object], list[tuple[str, x509.Certificate, dt.datetime, dt.datetime]]] = {}
        self._issuers: dict[str, str] = {}

    @property
    def device_limit(self) -> int:
        """Fewer than this many Device Certificates may exist per Device ID (given, or from policy)."""
        if self._device_limit is None:
            # the RA's eligibility rule (policies/eligibility.yaml device.max_certificates_per_device)
            self._device_limit = self.policies.eligibility.max_certificates_per_device
        return self._device_limit

    # --- CSRs ------------------------------------------------------------------------------------

    def validate(self, raw: bytes | str, *, channel: str, requested_by: str | None,
                 expected: CsrKind | None = None) -> ValidatedCsr:
        """Validate, and on rejection keep only the record of the rejection."""
        try:
            return validate(raw, self.policies, expected)
        except CsrRejected as rejection:
            self.record_rejection(raw, rejection, channel=channel, requested_by=requested_by)
            raise

    def record_rejection(self, raw: bytes | str, rejection: CsrRejected, *, channel: str,
                         requested_by: str | None) -> None:
        with self.database.session() as session:
            session.add(CsrRejection(received_at=dt.datetime.now(dt.UTC), channel=channel,
                                     requested_by=requested_by, csr_sha256=received_digest(raw),
                                     code=rejection.code, message=rejection.message))

    # --- the issuer ------------------------------------------------------------------------------

    def issuer_chain(self, profile: str) -> list[tuple[str, x509.Certificate]]:
        """The CA certificates a certificate of ``profile`` depends on, its issuer first, up to the root
        (empty for a self-signed profile)."""
        chain = []
        name = self.ca.issuer_of(profile)
        while name != "self":
            chain.append((name, self.ca.hierarchy.certificate(name)))
            name = self.ca.issuer_of(name)
        return chain

    def issuer_refusal(self, profile: str, now: dt.datetime,
                       connection: Connection | None = None) -> IssuerUnusable | None:
        """Why the CA may not sign a certificate of ``profile`` now, if it may not: a CA certificate in its
        chain is outside its validity, or is revoked in the Repository (read on ``connection`` if given)."""
        key = (profile, self.ca.hierarchy.version())
        chain = self._chains.get(key)
        if chain is None:
            if len(self._chains) > 64:   # versions left behind by rotations
                self._chains.clear()
            chain = self._chains[key] = [(name, certificate, certificate.not_valid_before_utc,
                                              certificate.not_valid_after_utc)
                                             for name, certificate in self.issuer_chain(profile)]
        names = self.policies.environment.ca_names
        for name, certificate, not_before, not_after in chain:
            if not not_before <= now <= not_after:
                state, moment = ("expired on", not_after) if now > not_after else ("not valid before", not_before)
                return IssuerUnusable(ISSUER_NOT_VALID, f"the {names.get(name, name)} CA certificate ({name}, "
                                      f"serial {serial_hex(certificate.serial_number)}) {state} "
                                      f"{moment:%Y-%m-%d %H:%M:%S} UTC, so no {profile} certificate is "
                                      "issued under it. The hierarchy must be renewed before issuance resumes.")
        revoked = self.revocations.revoked([certificate for _, certificate, _, _ in chain], connection)
        if revoked:
            first = revoked[0]
            name = next(n for n, c, _, _ in chain if c.serial_number == int(first.serial, 16))
            return IssuerUnusable(ISSUER_REVOKED, f"the {names.get(name, name)} CA certificate ({name}, serial "
                                  f"{first.serial}) was revoked on {first.revoked_at:%Y-%m-%d %H:%M:%S} UTC "
                                  f"({first.reason}), so no {profile} certificate is issued under it. A new "
                                  "CA certificate must be issued (a key ceremony) before issuance resumes.")
        return None

    # --- the path --------------------------------------------------------------------------------

    def sign(self, requests: Sequence[ValidatedCsr | CertificateRequest], *, channel: str,
             requested_by: str | None, now: dt.datetime | None = None, connection: Connection | None = None) -> Signed:
        """Sign each request under a usable issuer and lint it where policy says; report each refusal.
        ``connection``: where to read the issuer's revocation (default: a connection of its own)."""
        now = now or dt.datetime.now(dt.UTC)
        names = self.policies.environment.ca_names
        issuer_refusals: dict[str, IssuerUnusable | None] = {}
        outcomes: list[Outcome] = []
        for item in requests:
            csr = item if isinstance(item, ValidatedCsr) else None
            request = request_for(item) if isinstance(item, ValidatedCsr) else item
            profile = request.profile
            if profile not in issuer_refusals:
                issuer_refusals[profile] = self.issuer_refusal(profile, now, connection)
            refusal = issuer_refusals[profile]
            if refusal is not None:
                outcomes.append(NotIssued(request, csr, refusal))
                continue
            try:
                certificate = self.ca.issue(request, now=now)
                der = certificate.public_bytes(serialization.Encoding.DER)
                if profile in self.linted_profiles:
                    release_check(certificate, profile, self.policies, der)
            except (IssuanceFailed, ConfigurationError) as failure:
                outcomes.append(NotIssued(request, csr, failure))
                continue
            issuer = self._issuers.get(profile)
            if issuer is None:
                issuer = self._issuers[profile] = self.ca.issuer_of(profile)
            row = ledger_row(certificate, request, issuer_name=names[profile if issuer == "self" else issuer],
                             channel=channel, requested_by=requested_by, csr_sha256=csr.sha256 if csr else None,
                             now=now, der=der)
            outcomes.append(IssuedCertificate(certificate, der, row["serial"], profile, csr, row))
        return Signed(outcomes, channel, requested_by)

    def record(self, connection: Connection | Session, signed: Signed) -> list[Outcome]:
        """Record what :meth:`sign` produced in the caller's transaction; returns the final outcomes, in
        order: a Device Certificate whose Device ID has reached the limit becomes :class:`NotIssued`
        (``CA:ANOM1``) and is not recorded. A serial collision raises ``IntegrityError``, which has spoilt
        the caller's transaction: the caller rolls back and signs the unit again."""
        issued = [outcome for outcome in signed.outcomes if isinstance(outcome, IssuedCertificate)]
        refused = {id(issued[p]) for p in record_issuance(connection, [o.ledger for o in issued],
                                                          device_limit=self.device_limit)}
        if not refused:
            return list(signed.outcomes)
        return [self._over_limit(outcome) if id(outcome) in refused else outcome for outcome in signed.outcomes]

    def _over_limit(self, outcome: Outcome) -> NotIssued:
        assert isinstance(outcome, IssuedCertificate)
        device = outcome.ledger["subject_id"]
        if outcome.csr is not None:
            request = request_for(outcome.csr)
        else:
            key = outcome.certificate.public_key()
            assert isinstance(key, ec.EllipticCurvePublicKey)  # the CA certifies only P-256 keys
            request = CertificateRequest(outcome.profile, key)
        # The signed certificate is discarded unrecorded: it was never released and no one can have seen it.
        return NotIssued(request, outcome.csr, DeviceLimitReached(DEVICE_LIMIT, (
            f"device {device} has reached its limit of Device Certificates (fewer than {self.device_limit} may "
            "exist per Device ID); this one was not issued. The service desk must raise the threshold "
            "before more are issued.")))

    def issue(self, csr: ValidatedCsr, *, channel: str, requested_by: str | None) -> IssuedCertificate:
        return self.issue_many([csr], channel=channel, requested_by=requested_by)[0]

    def issue_many(self, csrs: Sequence[ValidatedCsr], *, channel: str,
                   requested_by: str | None) -> list[IssuedCertificate]:
        """Sign and record every request in a transaction of its own, committed before any is returned;
        all or nothing: the first refusal is raised and nothing is recorded.

        Serials are random; the unique constraint is the arbiter. On the (astronomically rare)
        collision the whole unit is re-signed with fresh serials, so nothing half-issued escapes.
        """
        for _attempt in range(SERIAL_ATTEMPTS):
            serials: list[str] = []
            try:
                # One connection for the issuer's revocation (read before signing) and the ledger rows.
                with self._unit(len(csrs)) as connection:
                    signed = self.sign(csrs, channel=channel, requested_by=requested_by, connection=connection)
                    self._raise_first_refusal(signed.outcomes)
                    serials = [o.serial for o in signed.outcomes if isinstance(o, IssuedCertificate)]
                    outcomes = self.record(connection, signed)
                    self._raise_first_refusal(outcomes)  # rolls the unit back whole
            except IntegrityError as error:
                if self._serials_taken(serials):
                    continue  # a collision: the unit was rolled back whole; sign it again with new serials
                raise IssuanceFailed("CA:E206", "the issuance ledger refused the certificate; nothing was "
                                     "issued. Retry, and report it if it persists.") from error
            return [o for o in outcomes if isinstance(o, IssuedCertificate)]
        raise IssuanceFailed("CA:E205", "the CA could not allocate a unique serial; retry the request.")

    @contextmanager
    def _unit(self, size: int) -> Iterator[Connection]:
        """The connection a unit of ``size`` certificates is issued on: a transaction of its own, except one
        certificate on PostgreSQL. There :func:`record_issuance` records it in a single statement (the
        tally's increment and the ledger row together), which PostgreSQL applies whole or not at all, so it
        runs in autocommit: no BEGIN and no COMMIT round trip, and the issuer's revocation is read as the
        statement before it, in the same snapshot-per-statement a READ COMMITTED transaction would give."""
        engine = self.database.engine
        if size != 1 or engine.dialect.name != "postgresql":
            with engine.begin() as connection:
                yield connection
            return
        with engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    @staticmethod
    def _raise_first_refusal(outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, NotIssued):
                raise outcome.error

    def _serials_taken(self, serials: list[str]) -> bool:
        table = IssuanceRecord.__table__
        with self.database.engine.connect() as connection:
            return connection.execute(select(table.c.serial).where(table.c.serial.in_(serials)).limit(1)).first() \
                is not None

    def issue_from_csr(self, raw: bytes | str, *, channel: str, requested_by: str | None = None,
                       expected: CsrKind | None = None) -> IssuedCertificate:
        csr = self.validate(raw, channel=channel, requested_by=requested_by, expected=expected)
        return self.issue(csr, channel=channel, requested_by=requested_by)
