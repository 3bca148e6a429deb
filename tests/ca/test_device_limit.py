"""Fewer than the limit of Device Certificates per Device ID, under any concurrency (issue 8, item 1).

The ledger's per-device tally is incremented by a conditional upsert in the transaction that inserts the
ledger rows: a refused increment is a coded refusal (CA:ANOM1) and nothing of that certificate commits.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from smki.core.db import Database
from smki.core.errors import SmkiError
from smki.core.eui64 import Eui64
from smki.csrgen import device_csr
from smki.instance import Instance
from smki.issuance import DEVICE_LIMIT, IssuanceService, device_certificate_counts, record_issuance
from smki.models import DeviceCertificateTally, IssuanceRecord
from smki.schema import alembic_config
from tests.ca import craft

CLIENTS = 8


def ledger_rows(device: str, count: int) -> list[dict]:
    now = dt.datetime.now(dt.UTC)
    return [{"serial": secrets.token_hex(16).upper(), "profile": "device", "issuer_name": "S357",
             "subject_id": device, "key_usage": "digitalSignature", "role_code": None, "channel": "seed",
             "requested_by": "test", "csr_sha256": None, "tbs_sha256": "0" * 64, "certificate_der": b"\x30\x00",
             "issued_at": now} for _ in range(count)]


def device_csr_der(device: str) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    return device_csr(ec.generate_private_key(ec.SECP256R1()), Eui64.parse(device), "keyAgreement") \
        .public_bytes(Encoding.DER)


def ledger_count(instance: Instance, device: str) -> int:
    with instance.database.session() as session:
        return session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.subject_id == device)) or 0


def test_eight_clients_pushing_one_device_to_the_limit_get_exactly_what_fits(instance: Instance):
    device = "00DB0000000A0097"
    with instance.database.session() as session:
        record_issuance(session, ledger_rows(device, 97))
    limit = IssuanceService(instance.ca, instance.database, instance.policies).device_limit
    assert limit == 100  # policies/eligibility.yaml: fewer than 100 may exist, so 99 at most
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> str:
        # each client its own service, connection and transaction, as separate web workers would have
        service = IssuanceService(instance.ca, Database(instance.database.url), instance.policies)
        csr = service.validate(device_csr_der(device), channel="api", requested_by=f"client-{n}")
        start.wait(timeout=30)
        try:
            return service.issue(csr, channel="api", requested_by=f"client-{n}").serial
        except SmkiError as refusal:
            return refusal.code

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(client, range(CLIENTS)))

    refusals = Counter(a for a in answers if ":" in a)
    assert refusals == Counter({DEVICE_LIMIT: CLIENTS - 2}), answers
    assert ledger_count(instance, device) == limit - 1
    with instance.database.session() as session:
        assert device_certificate_counts(session, [device]) == {device: limit - 1}


def test_a_batch_gets_as_many_certificates_for_a_device_as_still_fit(instance: Instance):
    device = "00DB0000000A0098"
    with instance.database.session() as session:
        record_issuance(session, ledger_rows(device, 96))
        refused = record_issuance(session, ledger_rows(device, 5) + ledger_rows("00DB0000000A0099", 2),
                                  device_limit=100)
    assert refused == [3, 4]  # the 100th and 101st; the other device's two are recorded
    assert ledger_count(instance, device) == 99
    with instance.database.session() as session:
        assert device_certificate_counts(session, [device, "00DB0000000A0099", "00DB0000000A00FF"]) == {
            device: 99, "00DB0000000A0099": 2}


def test_a_refusal_at_the_limit_commits_nothing_of_the_unit(instance: Instance):
    device = "00DB0000000A009A"
    with instance.database.session() as session:
        record_issuance(session, ledger_rows(device, 99))
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    csrs = [service.validate(craft.device(craft.p256("limit-other")), channel="api", requested_by=None),
            service.validate(device_csr_der(device), channel="api", requested_by=None)]

    with pytest.raises(SmkiError) as refused:
        service.issue_many(csrs, channel="api", requested_by=None)

    assert refused.value.code == DEVICE_LIMIT and device in refused.value.message
    with instance.database.session() as session:  # the unit's other certificate was not recorded either
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.channel == "api")) == 0


def test_the_migration_counts_the_devices_the_ledger_already_holds(database_url: str):
    database = Database(database_url)
    config = alembic_config(database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001_ca_core")
    with database.engine.begin() as connection:
        record = ledger_rows("00DB0000000B0001", 3) + ledger_rows("00DB0000000B0002", 1)
        record[-1]["profile"] = "organisation"  # not a Device Certificate: not counted
        connection.execute(IssuanceRecord.__table__.insert(), record)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
    with database.engine.connect() as connection:
        tally = {device: issued for device, issued in connection.execute(
            select(DeviceCertificateTally.device_id, DeviceCertificateTally.issued))}
    assert tally == {"00DB0000000B0001": 3}


def test_a_device_held_by_one_transaction_does_not_hold_up_another_device(instance: Instance):
    """PostgreSQL locks the one tally row: a writer for another device goes straight through, one for the
    same device waits (here: is refused by a lock timeout)."""
    engine = instance.database.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time for the whole database")
    holder = engine.connect()
    holder_transaction = holder.begin()
    try:
        record_issuance(holder, ledger_rows("00DB0000000C0001", 1), device_limit=100)
        with engine.begin() as other:
            other.execute(text("SET LOCAL lock_timeout = '5s'"))
            assert record_issuance(other, ledger_rows("00DB0000000C0002", 1), device_limit=100) == []
        with pytest.raises(OperationalError, match="lock timeout"), engine.begin() as same:
            same.execute(text("SET LOCAL lock_timeout = '200ms'"))
            record_issuance(same, ledger_rows("00DB0000000C0001", 1), device_limit=100)
    finally:
        holder_transaction.rollback()
        holder.close()
