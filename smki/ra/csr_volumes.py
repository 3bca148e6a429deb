"""The RA's part of the CSR volumes count (SEC L8.9): its decisions on CSRs, as one aggregate select.

Every CSR the RA decided on has one :class:`~smki.ra.models.CsrDecision` row, whatever became of it
(approved, issued, released, refused, rejected by the subscriber afterwards), so counting those rows
counts each such CSR once. Device CSRs of the Appendix M services (batches and ad hoc calls) are counted
from their own records instead, which also hold the CSRs refused before any RA decision:
:mod:`smki.devicecsr.volumes` composes the whole count and is the public entry point.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, String, case, cast, func, literal, literal_column, select
from sqlalchemy.orm import QueryableAttribute

from smki.ra.models import CsrDecision, Person

# The Appendix M services record their own CSRs; the RA's rows for them would count those twice.
SERVICE_CHANNELS = ("batch", "portal", "adhoc")
# Grouped by these output names: the expressions carry bound parameters, which PostgreSQL would not
# recognise as the same expression twice. Names no table here has, so none is read as a column.
SUBSCRIBER, KIND, MONTH = "csr_subscriber", "csr_kind", "csr_month"
# The rule of a CSR refused before any eligibility rule (smki.ra.eligibility.record_rejection).
MALFORMED_RULE = "csr_format"


def grouped() -> tuple[ColumnElement[str], ...]:
    return tuple(literal_column(name) for name in (SUBSCRIBER, KIND, MONTH))


def month_bucket(column: QueryableAttribute[dt.datetime], starts: Sequence[dt.datetime],
                 labels: Sequence[str]) -> ColumnElement[str]:
    """The label of the month ``column`` falls in, given each month's start (ascending, UTC) and one more
    start that ends the last month. A CASE, not a date function: the same on SQLite and PostgreSQL, and
    months in any time zone. One month needs no CASE: the range in the WHERE clause already made it."""
    if len(labels) == 1:
        return literal(labels[0])
    return case(*[(column < start, literal(label)) for start, label in zip(starts[1:], labels, strict=True)],
                else_=literal(None))


def decision_volumes(starts: Sequence[dt.datetime], labels: Sequence[str], *,
                     count_malformed: bool = True) -> Select[tuple[str, str, str, int]]:
    """(subscriber organisation id as text, kind, month, CSRs) for the RA's own channels: Organisation CSRs
    (kind ``organisation``) and Device CSRs submitted one at a time through the RA's API (``device_single``).
    A CSR refused because its subject belongs to no Subscriber, or refused as malformed before any rule
    (``MALFORMED_RULE``; left out when ``count_malformed`` is false), counts for the submitting ARO's Party."""
    bucket = month_bucket(CsrDecision.decided_at, starts, labels).label(MONTH)
    subscriber = cast(func.coalesce(CsrDecision.subscriber_organisation_id, Person.organisation_id), String)
    kind = case((CsrDecision.kind == "organisation", literal("organisation")), else_=literal("device_single"))
    return (select(subscriber.label(SUBSCRIBER), kind.label(KIND), bucket, func.count().label("csrs"))
            .select_from(CsrDecision).outerjoin(Person, Person.id == CsrDecision.person_id)
            .where(CsrDecision.decided_at >= starts[0], CsrDecision.decided_at < starts[-1],
                   (CsrDecision.kind == "organisation") | CsrDecision.channel.not_in(SERVICE_CHANNELS))
            .where(CsrDecision.rule != MALFORMED_RULE if not count_malformed else literal(True))
            .group_by(*grouped()))
