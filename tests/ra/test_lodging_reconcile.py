"""Reconciliation: released certificates the Repository lacks are lodged; unreleased ones never are."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from repository.store import CertificateRepository
from smki.issuance import IssuanceService
from smki.ra.lodging import lodge_unlodged
from smki.ra.models import CsrDecision
from smki.ra.service import RegistrationAuthority
from tests.ra.conftest import Population, device_csr_pem


def test_released_certificates_missing_from_the_repository_are_lodged_and_unreleased_ones_are_not(
        ra: RegistrationAuthority, population: Population, instance, monkeypatch):
    repository = CertificateRepository(instance.database)
    # An RA release whose lodging was lost (as a version that lodged after committing the issuance could leave)
    monkeypatch.setattr(type(ra.lodge), "lodge_issued", lambda self, *args, **kwargs: None)
    lost = ra.submit_device_csr(ra.authenticate_token(population.aro_a.token), device_csr_pem("00DB0000000E0001"),
                                manufacturer_id=population.manufacturer)
    # Operator issuance, which bypasses the RA and so was never lodged
    operator = IssuanceService(instance.ca, instance.database, instance.policies).issue_from_csr(
        device_csr_pem("00DB0000000E0002"), channel="operator", requested_by="ops")
    # A certificate signed but never released: its decision never reached 'issued'
    unreleased = ra.submit_device_csr(ra.authenticate_token(population.aro_a.token),
                                      device_csr_pem("00DB0000000E0003"))
    with instance.database.session() as session:
        session.execute(update(CsrDecision).where(CsrDecision.serial == unreleased.serial)
                        .values(status="approved"))
    assert repository.get(lost.serial) is None and repository.get(operator.serial) is None

    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    assert lodge_unlodged(instance.database, since) == 2

    record = repository.get(lost.serial)
    assert record is not None and record.manufacturing_flag  # lodged with the RA's ManufacturingFlag
    assert repository.get(operator.serial) is not None
    assert repository.get(unreleased.serial) is None
    assert lodge_unlodged(instance.database, since) == 0  # nothing lodged twice
