"""Serial numbers are unique because the database says so, and issuance survives a collision."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

import smki.ca.builder
from smki.ca.identifiers import new_serial
from smki.core.errors import IssuanceFailed
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.models import IssuanceRecord
from tests.ca import craft


@pytest.fixture
def service(instance: Instance) -> IssuanceService:
    return IssuanceService(instance.ca, instance.database, instance.policies)


def rows(instance: Instance) -> list[IssuanceRecord]:
    with instance.database.session() as session:
        return list(session.scalars(select(IssuanceRecord).order_by(IssuanceRecord.id)))


def count(instance: Instance) -> int:
    with instance.database.session() as session:
        return session.scalar(select(func.count()).select_from(IssuanceRecord)) or 0


def record_like(row: IssuanceRecord, **changes) -> IssuanceRecord:  # type: ignore[no-untyped-def]
    columns = {c.key: getattr(row, c.key) for c in IssuanceRecord.__table__.columns if c.key != "id"}
    return IssuanceRecord(**{**columns, **changes})


def test_the_database_refuses_a_duplicate_serial(instance, service):
    issued = service.issue_from_csr(craft.organisation(craft.p256("s1")), channel="api", requested_by=None)
    [original] = rows(instance)

    with pytest.raises(IntegrityError), instance.database.session() as session:
        # another profile, another subject: the serial alone must be unique across the whole CA
        session.add(record_like(original, profile="device", subject_id="00DB123456789001"))

    assert [r.serial for r in rows(instance)] == [issued.serial]
    with instance.database.session() as session:  # a different serial goes in
        session.add(record_like(original, serial="7" + original.serial[1:] if original.serial[0] != "7"
                                else "1" + original.serial[1:]))
    assert count(instance) == 2


def _collide_once(monkeypatch: pytest.MonkeyPatch, serial: int) -> list[int]:
    """The next serial the builder draws is ``serial``; after that, random ones again."""
    real = smki.ca.builder.new_serial
    drawn: list[int] = []

    def new_serial(octets: int = 16) -> int:
        value = serial if not drawn else real(octets)
        drawn.append(value)
        return value

    monkeypatch.setattr(smki.ca.builder, "new_serial", new_serial)
    return drawn


def test_issuance_retries_with_a_fresh_serial_on_a_collision(instance, service, monkeypatch):
    first = service.issue_from_csr(craft.organisation(craft.p256("s2")), channel="api", requested_by=None)
    drawn = _collide_once(monkeypatch, first.certificate.serial_number)

    second = service.issue_from_csr(craft.device(craft.p256("s3")), channel="api", requested_by=None)

    assert drawn[0] == first.certificate.serial_number and len(drawn) == 2
    assert second.certificate.serial_number == drawn[1] != first.certificate.serial_number
    second.certificate.verify_directly_issued_by(instance.hierarchy.certificate("issuing_dca"))
    ledger = rows(instance)
    assert [r.serial for r in ledger] == [first.serial, second.serial]
    assert ledger[1].certificate_der == second.der  # the certificate released is the one recorded
    assert ledger[1].profile == "device"


def test_a_batch_with_one_collision_is_resigned_whole(instance, service, monkeypatch):
    first = service.issue_from_csr(craft.organisation(craft.p256("s4")), channel="api", requested_by=None)
    csrs = [service.validate(craft.organisation(craft.p256(f"b{i}"), "03"), channel="batch", requested_by=None)
            for i in range(3)]
    _collide_once(monkeypatch, first.certificate.serial_number)

    batch = service.issue_many(csrs, channel="batch", requested_by="ops")

    serials = [b.serial for b in batch]
    assert first.serial not in serials and len(set(serials)) == 3
    ledger = rows(instance)
    assert len(ledger) == 4
    assert {r.serial: r.certificate_der for r in ledger[1:]} == {b.serial: b.der for b in batch}


def test_issuance_gives_up_with_a_coded_error_when_every_serial_collides(instance, service, monkeypatch):
    first = service.issue_from_csr(craft.organisation(craft.p256("s5")), channel="api", requested_by=None)
    monkeypatch.setattr(smki.ca.builder, "new_serial", lambda octets=16: first.certificate.serial_number)

    with pytest.raises(IssuanceFailed) as caught:
        service.issue_from_csr(craft.organisation(craft.p256("s6")), channel="api", requested_by=None)

    assert caught.value.code == "CA:E205"
    assert [r.serial for r in rows(instance)] == [first.serial]


def test_new_serial_is_always_sixteen_octets_with_a_first_octet_from_01_to_7f():
    firsts = set()
    for _ in range(5000):
        serial = new_serial(16)
        octets = serial.to_bytes(16, "big")  # raises if it needed a 17th octet
        assert 0x01 <= octets[0] <= 0x7F
        firsts.add(octets[0])
    assert min(firsts) < 0x10 and max(firsts) > 0x70  # the whole range is used, not a fixed prefix


def test_a_ledger_refusal_that_is_not_a_serial_collision_is_not_retried(instance, service, monkeypatch):
    import smki.issuance

    attempts = []

    def refuse(connection, rows, **_options):  # type: ignore[no-untyped-def]
        attempts.append(len(rows))
        raise IntegrityError("INSERT INTO issuance", {}, Exception("NOT NULL constraint failed"))

    monkeypatch.setattr(smki.issuance, "record_issuance", refuse)
    with pytest.raises(IssuanceFailed) as caught:
        service.issue_from_csr(craft.organisation(craft.p256("s9")), channel="api", requested_by=None)

    assert caught.value.code == "CA:E206"
    assert attempts == [1]  # re-signing cannot cure a refusal that is not about the serial
    assert count(instance) == 0
