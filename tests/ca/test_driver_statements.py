"""The issuance path's driver-level writes (smki.core.driver_sql) store exactly what SQLAlchemy would, and
the one-certificate unit records its tally and ledger row whole or not at all, on both databases."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import cast

import pytest
from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import IntegrityError

from smki.core.driver_sql import insert_rows
from smki.instance import Instance
from smki.issuance import LEDGER_COLUMNS, record_issuance
from smki.models import DeviceCertificateTally, IssuanceRecord

LEDGER = cast(Table, IssuanceRecord.__table__)


def ledger_row(device: str | None, serial: str | None = None) -> dict:
    return {"serial": serial or secrets.token_hex(16).upper(), "profile": "device" if device else "organisation",
            "issuer_name": "S357", "subject_id": device, "key_usage": "keyAgreement", "role_code": None,
            "channel": "test", "requested_by": "test", "csr_sha256": None, "tbs_sha256": "0" * 64,
            "certificate_der": bytes(range(256)),
            "issued_at": dt.datetime(2026, 12, 3, 15, 4, 5, 123456, tzinfo=dt.UTC)}


def stored(instance: Instance, serial: str) -> tuple:
    """The row as the database holds it, read without any type processing (SQLite keeps times as text)."""
    columns = ", ".join(c for c in LEDGER_COLUMNS if c != "serial")
    with instance.database.engine.connect() as connection:
        return tuple(connection.execute(text(f"SELECT {columns} FROM issuance WHERE serial = :s"), {"s": serial}).one())


def test_bulk_rows_are_stored_exactly_as_sqlalchemy_stores_them(ledger_instance: Instance):
    mine, theirs = ledger_row("00DB1234FFFF0001"), ledger_row("00DB1234FFFF0001")
    with ledger_instance.database.engine.begin() as connection:
        insert_rows(connection, LEDGER, LEDGER_COLUMNS, [mine])  # COPY on PostgreSQL
        connection.execute(insert(LEDGER), [theirs])
    assert stored(ledger_instance, mine["serial"]) == stored(ledger_instance, theirs["serial"])


def test_a_bulk_serial_collision_is_sqlalchemys_integrity_error_and_writes_nothing(ledger_instance: Instance):
    first = ledger_row(None)
    with ledger_instance.database.engine.begin() as connection:
        insert_rows(connection, LEDGER, LEDGER_COLUMNS, [first])
    with pytest.raises(IntegrityError), ledger_instance.database.engine.begin() as connection:
        insert_rows(connection, LEDGER, LEDGER_COLUMNS, [ledger_row(None), ledger_row(None, first["serial"])])
    with ledger_instance.database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM issuance")).scalar_one() == 1


def test_one_certificate_takes_its_tally_place_and_its_ledger_row_together(ledger_instance: Instance):
    device, limit = "00DB1234FFFF0002", 3
    outcomes = []
    for _ in range(4):  # fewer than 3 may exist: the first two fit
        with ledger_instance.database.engine.begin() as connection:
            outcomes.append(record_issuance(connection, [ledger_row(device)], device_limit=limit))
    assert outcomes == [[], [], [0], [0]]
    with ledger_instance.database.session() as session:
        assert session.scalar(select(DeviceCertificateTally.issued)) == 2
        assert len(session.scalars(select(IssuanceRecord.serial)).all()) == 2


def test_a_collision_of_one_certificate_leaves_its_device_tally_as_it_was(ledger_instance: Instance):
    device = "00DB1234FFFF0003"
    first = ledger_row(device)
    with ledger_instance.database.engine.begin() as connection:
        record_issuance(connection, [first], device_limit=100)
    with pytest.raises(IntegrityError), ledger_instance.database.engine.begin() as connection:
        record_issuance(connection, [ledger_row(device, first["serial"])], device_limit=100)
    with ledger_instance.database.session() as session:
        assert session.scalar(select(DeviceCertificateTally.issued)) == 1
