"""The CSR path through the RA: scope, validation, eligibility (recorded with its rule), issuance,
audit, release; and the Device Certificate rules."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from cryptography import x509
from sqlalchemy import delete, select

from repository.models import RepositoryCertificate
from smki.core.errors import SmkiError
from smki.models import IssuanceRecord
from smki.ra import audit
from smki.ra.identity import NotAuthorised, revoke_credentials
from smki.ra.models import AuditRecord, Authorisation, CsrDecision, Device
from smki.ra.service import Ineligible, RegistrationAuthority, unreleased_serials
from tests.ra.conftest import (
    NETWORK_ED,
    SUPPLIER_A_GS,
    SUPPLIER_A_IS,
    SUPPLIER_B_IS,
    Population,
    device_csr_pem,
    org_csr_pem,
)


def principal(ra: RegistrationAuthority, member):  # type: ignore[no-untyped-def]
    return ra.authenticate_token(member.token)


def decisions(ra: RegistrationAuthority) -> list[CsrDecision]:
    with ra.database.session() as session:
        return list(session.execute(select(CsrDecision).order_by(CsrDecision.id)).scalars())


def test_correct_aro_obtains_an_organisation_certificate_for_its_own_user_id(ra, population: Population) -> None:
    release = ra.submit_organisation_csr(principal(ra, population.aro_a), org_csr_pem(SUPPLIER_A_IS, "02"))
    certificate = x509.load_der_x509_certificate(release.certificate.der)
    assert certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "02"
    [decision] = decisions(ra)
    assert decision.allowed and decision.rule == "org.role.supplier" and decision.status == "released"
    assert decision.serial == release.serial and decision.subscriber_organisation_id == population.supplier_a
    with ra.database.session() as session:
        actions = [r.action for r in session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars()]
    # the approval is on record before the CA signs, the issuance before the certificate is released
    assert actions[-2:] == ["csr.approved", "certificate.issued"]


def test_gas_supplier_user_id_is_eligible_for_the_supplier_role(ra, population: Population) -> None:
    csr = org_csr_pem(SUPPLIER_A_GS, "02", "keyAgreement")
    release = ra.submit_organisation_csr(principal(ra, population.aro_a), csr)
    assert release.decision.rule == "org.role.supplier"


def test_organisation_csr_for_another_partys_eui_is_refused_and_recorded(ra, population: Population) -> None:
    with pytest.raises(Ineligible) as refused:
        ra.submit_organisation_csr(principal(ra, population.aro_a), org_csr_pem(SUPPLIER_B_IS, "02"))
    assert refused.value.code == "IN:ORG01"
    [decision] = decisions(ra)
    assert not decision.allowed and decision.rule == "org.eui-owned" and decision.code == "IN:ORG01"
    with ra.database.session() as session:
        assert session.execute(select(IssuanceRecord).where(IssuanceRecord.channel == "api")).first() is None


def test_user_role_must_fit_the_remote_party_role(ra, population: Population) -> None:
    with pytest.raises(Ineligible) as refused:
        ra.submit_organisation_csr(principal(ra, population.aro_network), org_csr_pem(NETWORK_ED, "02"))
    assert refused.value.code == "IN:ORG04"
    assert decisions(ra)[-1].rule == "org.role.supplier"
    assert ra.submit_organisation_csr(principal(ra, population.aro_network),
                                      org_csr_pem(NETWORK_ED, "03")).decision.rule == "org.role.network-operator"


def test_dcc_only_roles(ra, population: Population) -> None:
    with pytest.raises(Ineligible) as refused:
        ra.submit_organisation_csr(principal(ra, population.aro_a), org_csr_pem(SUPPLIER_A_IS, "04"))
    assert refused.value.code == "IN:ORG05"
    acb = ra.instance.policies.environment.dcc_entity_identifiers["access_control_broker"].hex
    release = ra.submit_organisation_csr(principal(ra, population.aro_dcc), org_csr_pem(acb, "04", "keyAgreement"))
    assert release.decision.rule == "org.role.dcc-only"


def test_scope_is_checked_before_the_csr_is_read(ra, population: Population) -> None:
    with pytest.raises(NotAuthorised) as refused:
        ra.submit_organisation_csr(principal(ra, population.aro_a_device_only), "not even a CSR")
    assert refused.value.code == "AZ:ARO03"
    with pytest.raises(NotAuthorised) as refused:
        ra.submit_organisation_csr(principal(ra, population.manufacturer_contact), org_csr_pem(SUPPLIER_A_IS))
    assert refused.value.code == "AZ:ORG01"


def test_invalid_csr_is_rejected_with_its_code_and_audited(ra, population: Population) -> None:
    with pytest.raises(SmkiError) as rejected:
        ra.submit_organisation_csr(principal(ra, population.aro_a), "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                   "-----END CERTIFICATE-----")
    assert rejected.value.code == "FM:CSR04"
    with ra.database.session() as session:
        last = session.execute(select(AuditRecord).order_by(AuditRecord.seq.desc())).scalars().first()
    assert last.action == "csr.rejected" and "FM:CSR04" in last.detail
    # a CSR all the same, counted once in the L8.9 volumes: a refused decision of the sender's, nothing issued
    with ra.database.session() as session:
        [decision] = session.execute(select(CsrDecision)).scalars().all()
    assert (decision.rule, decision.code, decision.status, decision.allowed, decision.serial) == (
        "csr_format", "FM:CSR04", "refused", False, None)
    assert decision.person_id == population.aro_a.person_id and decision.kind == "organisation"


def test_supplier_aro_obtains_device_certificates_for_a_manufacturer(ra, population: Population) -> None:
    device_id = "00DB120000000001"
    release = ra.submit_device_csr(principal(ra, population.aro_a), device_csr_pem(device_id),
                                   manufacturer_id=population.manufacturer)
    assert release.decision.manufacturing_flag
    assert release.decision.subscriber_organisation_id == population.supplier_a
    assert release.decision.rule == "device.state.pre_installation"
    [row] = decisions(ra)
    assert row.manufacturing_flag and row.manufacturer_organisation_id == population.manufacturer


def test_a_manufacturer_is_never_the_subscriber(ra, population: Population) -> None:
    with pytest.raises(Ineligible) as refused:
        ra.submit_device_csr(principal(ra, population.aro_a), device_csr_pem("00DB120000000002"),
                             subscriber_id=population.manufacturer)
    assert refused.value.code == "IN:DEV02"
    assert decisions(ra)[-1].rule == "device.manufacturer-direct"
    with pytest.raises(NotAuthorised) as refused:
        ra.submit_device_csr(principal(ra, population.manufacturer_contact), device_csr_pem("00DB120000000002"))
    assert refused.value.code == "AZ:ORG01"


def test_fewer_than_100_certificates_per_device_id(ra, population: Population) -> None:
    device_id = "00DB120000000003"
    with ra.database.session() as session:  # 98 certificates already exist for the device
        for _ in range(98):
            session.add(IssuanceRecord(serial=secrets.token_hex(16).upper(), profile="device", issuer_name="S357",
                                       subject_id=device_id, channel="batch", tbs_sha256="0" * 64,
                                       certificate_der=b"\x30\x00", issued_at=dt.datetime.now(dt.UTC)))
    aro = principal(ra, population.aro_a)
    ra.submit_device_csr(aro, device_csr_pem(device_id))  # the 99th
    with pytest.raises(Ineligible) as refused:
        ra.submit_device_csr(aro, device_csr_pem(device_id))  # would be the 100th
    assert refused.value.code == "WF:DEV04"
    assert decisions(ra)[-1].rule == "device.certificate-limit"
    ra.submit_device_csr(aro, device_csr_pem("00DB120000000004"))  # other devices are unaffected


def test_installed_device_only_for_its_responsible_supplier(ra, population: Population) -> None:
    device_id = "00DB120000000005"
    with ra.database.session() as session:
        session.add(Device(device_id=device_id, state="installed", responsible_organisation_id=population.supplier_b,
                           updated_at=dt.datetime.now(dt.UTC)))
    with pytest.raises(Ineligible) as refused:
        ra.submit_device_csr(principal(ra, population.aro_a), device_csr_pem(device_id))
    assert refused.value.code == "IN:DEV03"
    assert ra.submit_device_csr(principal(ra, population.aro_b), device_csr_pem(device_id)).decision.rule \
        == "device.state.installed"


def test_ad_hoc_replaces_only_and_only_for_is_gs_and_the_dcc(ra, population: Population) -> None:
    device_id = "00DB120000000006"
    aro = principal(ra, population.aro_a)
    with pytest.raises(Ineligible) as refused:
        ra.submit_device_csr(aro, device_csr_pem(device_id), ad_hoc=True)
    assert refused.value.code == "UD:DEV05"
    ra.submit_device_csr(aro, device_csr_pem(device_id))
    assert ra.submit_device_csr(aro, device_csr_pem(device_id), ad_hoc=True).decision.allowed
    with pytest.raises(Ineligible) as refused:
        ra.submit_device_csr(principal(ra, population.aro_network), device_csr_pem(device_id), ad_hoc=True)
    assert refused.value.code == "IN:DEV06"


def test_device_subscriber_must_be_authorised_and_acted_for(ra, population: Population) -> None:
    with pytest.raises(Ineligible) as refused:
        ra.submit_device_csr(principal(ra, population.aro_a), device_csr_pem("00DB120000000007"),
                             subscriber_id=population.supplier_b)
    assert refused.value.code == "IN:DEV07"


def test_subscriber_rejects_a_certificate_on_receipt(ra, population: Population) -> None:
    aro = principal(ra, population.aro_a)
    release = ra.submit_organisation_csr(aro, org_csr_pem(SUPPLIER_A_IS))
    with pytest.raises(NotAuthorised):
        ra.reject_certificate(principal(ra, population.aro_b), release.serial, "not mine")
    assert ra.reject_certificate(aro, release.serial, "subject differs from CSR").status == "rejected_by_subscriber"
    with pytest.raises(SmkiError) as again:
        ra.reject_certificate(aro, release.serial, "twice")
    assert again.value.code == "WF:CRT03"


def test_no_audit_record_no_certificate(ra, population: Population, monkeypatch) -> None:
    aro = principal(ra, population.aro_a)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise audit.AuditConflict("the audit store is unavailable")

    monkeypatch.setattr(audit, "append_many", broken)
    with pytest.raises(SmkiError) as failed:
        ra.submit_organisation_csr(aro, org_csr_pem(SUPPLIER_A_IS))
    assert failed.value.code == "CA:AUD01"
    with ra.database.session() as session:
        assert session.execute(select(IssuanceRecord).where(IssuanceRecord.channel == "api")).first() is None
        assert session.execute(select(CsrDecision)).first() is None


def test_no_audit_record_of_issuance_nothing_issued(ra, population: Population, monkeypatch) -> None:
    """The decision, its audit records, the ledger row and the Repository's record are one unit: when the
    ``certificate.issued`` record cannot be written, none of them remains (not even "signed but never
    released", which earlier versions, committing in steps, could leave)."""
    aro = principal(ra, population.aro_a)
    real = audit.append_many

    def fail_on_issued(session, entries):  # type: ignore[no-untyped-def]
        if any(entry.action == "certificate.issued" for entry in entries):
            raise audit.AuditConflict("the audit store is unavailable")
        return real(session, entries)

    monkeypatch.setattr(audit, "append_many", fail_on_issued)
    with pytest.raises(SmkiError) as failed:
        ra.submit_organisation_csr(aro, org_csr_pem(SUPPLIER_A_IS))
    assert failed.value.code == "CA:AUD01"
    assert decisions(ra) == []
    with ra.database.session() as session:
        assert session.execute(select(IssuanceRecord).where(IssuanceRecord.channel == "api")).first() is None
        assert session.execute(select(RepositoryCertificate)).first() is None
        issued = ("csr.approved", "certificate.issued")
        assert session.execute(select(AuditRecord).where(AuditRecord.action.in_(issued))).first() is None
    assert unreleased_serials(ra.instance) == []
    assert audit.verify(ra.database).intact


def test_a_refused_lodging_releases_nothing(ra, population: Population, monkeypatch) -> None:
    aro = principal(ra, population.aro_a)

    def refused(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise SmkiError("RP:LDG9", "the Repository refused the certificate")

    monkeypatch.setattr(type(ra.lodge), "lodge_issued", refused)
    with pytest.raises(SmkiError) as failed:
        ra.submit_organisation_csr(aro, org_csr_pem(SUPPLIER_A_IS))
    assert failed.value.code == "RP:LDG9"
    assert decisions(ra) == []
    with ra.database.session() as session:
        assert session.execute(select(IssuanceRecord).where(IssuanceRecord.channel == "api")).first() is None


def test_a_withdrawn_aro_is_refused_even_after_signing(ra, population: Population, monkeypatch) -> None:
    """The caller's credential is read again under the audit chain's lock: an ARO withdrawn while its
    certificate was being signed gets nothing, and nothing of its request is recorded."""
    aro = principal(ra, population.aro_a)
    sign = ra.issuance.sign

    def withdrawn_while_signing(*args, **kwargs):  # type: ignore[no-untyped-def]
        signed = sign(*args, **kwargs)
        with ra.database.session() as session:
            revoke_credentials(session, population.aro_a.person_id)
        return signed

    monkeypatch.setattr(ra.issuance, "sign", withdrawn_while_signing)
    with pytest.raises(SmkiError) as refused:
        ra.submit_organisation_csr(aro, org_csr_pem(SUPPLIER_A_IS))
    assert refused.value.code == "AU:TOK03"
    assert decisions(ra) == []
    with ra.database.session() as session:
        assert session.execute(select(IssuanceRecord).where(IssuanceRecord.channel == "api")).first() is None


def test_a_request_refused_while_it_was_signed_is_recorded_refused_and_nothing_issued(
        ra, population: Population, monkeypatch) -> None:
    """The decision recorded is the one made under the audit chain's lock, on the state then: a Subscriber
    whose authorisation ends while its certificate is being signed gets a refusal, and the certificate signed
    for it is discarded unrecorded."""
    aro = principal(ra, population.aro_a)
    sign = ra.issuance.sign

    def deauthorised_while_signing(*args, **kwargs):  # type: ignore[no-untyped-def]
        signed = sign(*args, **kwargs)
        with ra.database.session() as session:
            session.execute(delete(Authorisation).where(Authorisation.organisation_id == population.supplier_a))
        return signed

    monkeypatch.setattr(ra.issuance, "sign", deauthorised_while_signing)
    with pytest.raises(Ineligible) as refused:
        ra.submit_organisation_csr(aro, org_csr_pem(SUPPLIER_A_IS))
    [decision] = decisions(ra)
    assert (decision.allowed, decision.status, decision.rule) == (False, "refused", "org.authorised-subscriber")
    assert refused.value.code == decision.code
    with ra.database.session() as session:
        assert session.execute(select(IssuanceRecord).where(IssuanceRecord.channel == "api")).first() is None
    assert audit.verify(ra.database).intact
