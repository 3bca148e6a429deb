"""The Device CSR services behind the real RA: its credentials, eligibility, records, audit and lodging."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from repository.store import CertificateRepository
from smki.devicecsr.gate import load_gate
from smki.devicecsr.models import DeviceCsrBatch
from smki.devicecsr.ra_gate import RaGate
from smki.devicecsr.runtime import DeviceCsrRuntime
from smki.models import IssuanceRecord
from smki.ra import audit
from smki.ra.models import AuditRecord, CsrDecision
from smki.ra.population import PopulationBuilder
from tests.devicecsr.conftest import adhoc_xml, batch_xml, csr_b64, parse_answer, text
from tests.ra.conftest import Population

SUBMIT = "/1.0/PortalCSRBatch/SubmitCSRBatch"
POLL = "/1.0/PortalCSRBatch/CSRBatchResult"
ADHOC = "/1.0/PortalCSRAdHoc/DeviceCertificateSigningRequest"
NS = "{urn:smki-sandbox:device-csr:1.0}"


@pytest.fixture
def ra_runtime(instance, tmp_path) -> DeviceCsrRuntime:  # type: ignore[no-untyped-def]
    return DeviceCsrRuntime.build(instance, queue=f"sqlite:///{tmp_path / 'queue.db'}")  # the default gate


@pytest.fixture
def ra_client(app_for, ra_runtime):  # type: ignore[no-untyped-def]
    return app_for(ra_runtime).test_client()


def bearer(member) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {member.token}", "Content-Type": "application/xml"}


def outcomes(root) -> dict[str, tuple[str | None, str | None]]:  # type: ignore[no-untyped-def]
    return {e.get("ID"): (e.findtext(f"{NS}Status"), e.findtext(f"{NS}Error/{NS}ErrorCode"))
            for e in root.iter(f"{NS}DeviceCertificate")}


def submit(client, member, entries, query: str = ""):  # type: ignore[no-untyped-def]
    response = client.post(f"{SUBMIT}{query}", data=batch_xml(entries), headers=bearer(member))
    assert response.status_code == 200
    return parse_answer(response.data)


def completed(client, runtime, member, answer):  # type: ignore[no-untyped-def]
    runtime.jobs.run_pending()
    batch_id = text(answer, "{}BatchId")
    result = parse_answer(client.get(f"{POLL}?BatchId={batch_id}", headers=bearer(member)).data)
    assert text(result, "{}BatchStatus") == "COMPLETED"
    return outcomes(result)


def test_the_ra_is_the_default_gate(instance):
    assert isinstance(load_gate(instance), RaGate)


def test_a_supplier_aro_obtains_certificates_for_a_manufacturers_devices(ra_client, ra_runtime, instance,
                                                                         population: Population):
    entries = [(f"m-{n}", csr_b64(0x00DB00000000A000 + n)) for n in range(3)]

    answer = submit(ra_client, population.aro_a, entries, f"?Manufacturer={population.manufacturer}")
    assert text(answer, "{}BatchStatus") == "PENDING"
    found = completed(ra_client, ra_runtime, population.aro_a, answer)

    assert {status for status, _code in found.values()} == {"SUCCESS"}
    with instance.database.session() as session:
        decisions = session.scalars(select(CsrDecision).where(CsrDecision.channel == "batch")).all()
        ledger = session.scalars(select(IssuanceRecord).where(IssuanceRecord.channel == "batch")).all()
        chunk_audits = session.scalar(select(func.count()).select_from(AuditRecord)
                                      .where(AuditRecord.action == "device-csrs.decided"))
    # the supplier is the Subscriber of record, the manufacturer is named, and every CSR has its decision
    assert len(decisions) == 3
    assert {(d.subscriber_organisation_id, d.manufacturer_organisation_id, d.manufacturing_flag, d.status,
             d.person_id) for d in decisions} == {(population.supplier_a, population.manufacturer, True, "issued",
                                                   population.aro_a.person_id)}
    assert {d.serial for d in decisions} == {row.serial for row in ledger}
    assert chunk_audits == 1 and audit.verify(instance.database).intact
    repository = CertificateRepository(instance.database)
    for row in ledger:
        record = repository.get(row.serial)
        assert record is not None and record.manufacturing_flag  # lodged with the ManufacturingFlag
        assert row.requested_by.startswith(f"person:{population.aro_a.person_id}:")


def test_a_manufacturer_cannot_submit_in_its_own_name(ra_client, population: Population, instance):
    answer = submit(ra_client, population.manufacturer_contact, [("x", csr_b64(0x00DB00000000B000))])

    assert text(answer, "{}BatchStatus") == "WORKFLOW_ERROR"
    assert text(answer, "{}Error/{}ErrorCode") == "WF:AUTH2"
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceCsrBatch)) == 0


@pytest.mark.parametrize("who", ["aro_a_org_only", "aro_a_withdrawn", "sro_a"])
def test_only_an_aro_scoped_to_device_certificates_may_submit(ra_client, population: Population, who):
    answer = submit(ra_client, getattr(population, who), [("x", csr_b64(0x00DB00000000B100))])

    assert text(answer, "{}BatchStatus") == "WORKFLOW_ERROR"
    assert text(answer, "{}Error/{}ErrorCode") in ("WF:AUTH1", "WF:AUTH2")


def test_an_aro_cannot_name_a_subscriber_it_does_not_act_for(ra_client, population: Population):
    answer = submit(ra_client, population.aro_b, [("x", csr_b64(0x00DB00000000B200))],
                    f"?Subscriber={population.supplier_a}")

    assert text(answer, "{}Error/{}ErrorCode") == "WF:AUTH2"


def test_withdrawal_after_submission_stops_issuance_at_once(ra_client, ra_runtime, ra, instance,
                                                             population: Population):
    answer = submit(ra_client, population.aro_a, [(f"w-{n}", csr_b64(0x00DB00000000C000 + n)) for n in range(2)])
    PopulationBuilder(ra).withdraw(population.aro_a)

    assert text(answer, "{}BatchStatus") == "PENDING"  # accepted while the ARO was still appointed
    ra_runtime.jobs.run_pending()
    with instance.database.session() as session:
        statuses = session.execute(select(CsrDecision.status, CsrDecision.code)).all()
        issued = session.scalar(select(func.count()).select_from(IssuanceRecord)
                                .where(IssuanceRecord.channel == "batch"))
    assert issued == 0
    assert set(statuses) == {("refused", "WF:AUTH3")}


def test_ad_hoc_replacement_goes_through_the_ra(ra_client, ra_runtime, instance, population: Population):
    device = 0x00DB00000000D000
    first = submit(ra_client, population.aro_a, [("first", csr_b64(device))])
    assert completed(ra_client, ra_runtime, population.aro_a, first) == {"first": ("SUCCESS", None)}

    response = ra_client.post(ADHOC, data=adhoc_xml(csr_b64(device, "keyAgreement")), headers=bearer(population.aro_a))

    root = parse_answer(response.data)
    assert text(root, "{}Status") == "SUCCESS"
    with instance.database.session() as session:
        adhoc = session.scalars(select(CsrDecision).where(CsrDecision.channel == "adhoc")).one()
    assert (adhoc.status, adhoc.rule) == ("issued", "device.state.pre_installation")
    assert audit.verify(instance.database).intact


@pytest.mark.parametrize("parameter", ["Subscriber", "Manufacturer"])
@pytest.mark.parametrize("value", ["2147483648", "9223372036854775808", "１２", "-1"])
def test_an_organisation_id_out_of_range_is_a_coded_refusal(ra_client, instance, population: Population,
                                                             parameter, value):
    answer = submit(ra_client, population.aro_a, [("x", csr_b64(0x00DB00000000B300))], f"?{parameter}={value}")

    assert text(answer, "{}BatchStatus") == "WORKFLOW_ERROR"
    assert text(answer, "{}Error/{}ErrorCode") == "WF:AUTH4"
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceCsrBatch)) == 0
