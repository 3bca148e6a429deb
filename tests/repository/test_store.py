"""The certificate store: lodging, idempotency, search with cursors, statuses and their transitions."""

from __future__ import annotations

import datetime as dt

import pytest

from repository.errors import RepositoryError
from repository.store import TRANSITIONS, CertificateRepository
from smki.core.eui64 import Eui64


def test_lodging_derives_every_indexed_field_from_a_sandbox_organisation_certificate(repository, issue):
    der = issue("organisation", "90-B3-D5-1F-30-01-00-00", role="02", usage="keyAgreement")

    result = repository.lodge(der, lodged_by="ra:test")

    record = result.record
    assert result.created
    assert record.kind == "organisation" and record.role == 2 and record.usage == "KA"
    assert record.subject_eui == "90B3D51F30010000" and record.device_id is None
    assert record.issuer == "CN=S1,OU=07" and record.status == "I"
    assert record.lodged_by == "ra:test" and record.der == der


def test_lodging_a_device_certificate_records_its_device_id_and_no_role(repository, issue):
    record = repository.lodge(issue("device", "00-DB-12-34-56-78-90-01"), status="P",
                              manufacturing_flag=True).record

    assert (record.kind, record.device_id, record.role, record.usage) == ("device", "00DB123456789001", None, "DS")
    assert record.status == "P" and record.manufacturing_flag


def test_lodging_is_idempotent_on_serial_and_issuer(repository, issue):
    der = issue()
    first = repository.lodge(der)
    again = repository.lodge(der)

    assert not again.created and again.record.id == first.record.id
    assert repository.count() == 1


def test_a_different_certificate_with_the_same_serial_and_issuer_is_refused(repository, interop_dir):
    from tests.repository.conftest import pem_files

    genuine = pem_files(interop_dir / "device")
    repository.lodge_many(genuine)
    # the negative vector re-uses the serial of device ...a0-ds under the same issuer, with other content
    (tampered,) = pem_files(interop_dir / "negative")[1:2]

    with pytest.raises(RepositoryError) as caught:
        repository.lodge(tampered)

    assert caught.value.code == "RP:LDG5"


def test_unreadable_and_misdeclared_certificates_are_refused_with_codes(repository):
    with pytest.raises(RepositoryError) as caught:
        repository.lodge(b"not a certificate")
    assert caught.value.code == "RP:LDG1"
    with pytest.raises(RepositoryError) as caught:
        repository.lodge(b"x", status="R")
    assert caught.value.code == "RP:LDG4"


def test_lodge_many_is_one_transaction_and_skips_what_is_present(repository, interop_devices, issue):
    already = repository.lodge(interop_devices[0]).record
    summary = repository.lodge_many([*interop_devices, issue("device", "00-DB-12-34-56-78-99-99")])

    assert summary.lodged == len(interop_devices) and summary.already_present == 1
    assert repository.get(already.serial).id == already.id


def test_lodge_many_writes_nothing_when_one_certificate_is_refused(repository, interop_devices):
    with pytest.raises(RepositoryError):
        repository.lodge_many([*interop_devices[:10], b"garbage"])
    assert repository.count() == 0


def test_interop_certificates_lodge_alongside_sandbox_ones(repository, interop_org, interop_devices, issue):
    repository.lodge_many(interop_org + interop_devices)
    repository.lodge(issue("organisation", "90-B3-D5-1F-30-01-00-00"))

    suppliers = repository.search(subject_eui="90-B3-D5-1F-30-01-00-00", limit=1000).records
    issuers = {r.issuer for r in suppliers}
    assert issuers == {"CN=Z1,OU=07", "CN=S1,OU=07"}
    # every interop Organisation Certificate of this supplier has expired or expires in the 2030s
    assert {r.role for r in suppliers} == {2}


def test_expired_interop_certificates_are_lodged_as_expired(repository, interop_org):
    repository.lodge_many(interop_org, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))

    old = repository.search(subject_eui="90B3D51F30000001").records  # recovery, 2015/2016 certificates
    assert old and {r.status for r in old} == {"E"}
    current = repository.search(not_after_from=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)).records
    assert current and {r.status for r in current} == {"I"}


def test_search_filters_combine_and_cursor_pages_cover_everything_once(repository, interop_devices):
    repository.lodge_many(interop_devices)
    seen, cursor = [], None
    while True:
        page = repository.search(usage="KA", kind="device", limit=37, cursor=cursor)
        seen.extend(page.records)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert len(seen) == 200 and len({r.serial for r in seen}) == 200
    assert all(r.usage == "KA" for r in seen)
    by_device = repository.search(device_id="00-db-12-34-56-78-90-a0").records
    assert {r.usage for r in by_device} == {"DS", "KA"}
    by_serial = repository.search(serial=by_device[0].serial.lower()).records
    assert [r.id for r in by_serial] == [by_device[0].id]


def test_search_refuses_bad_criteria_and_forged_cursors(repository):
    for filters, code in (({"device_id": "nope"}, "RP:SRC1"), ({"status": "X"}, "RP:SRC4"),
                          ({"usage": "XX"}, "RP:SRC3"), ({"cursor": "!!"}, "RP:CUR1")):
        with pytest.raises(RepositoryError) as caught:
            repository.search(**filters)
        assert caught.value.code == code


@pytest.mark.parametrize("start", ["P", "I", "N"])
def test_documented_transitions_are_the_only_ones_allowed(repository, issue, start):
    for target in "PIN":
        record = repository.lodge(issue(), status=start).record
        if target == start:
            continue
        if target in TRANSITIONS[start]:
            assert repository.set_status(record.serial, target).status == target
        else:
            with pytest.raises(RepositoryError) as caught:
                repository.set_status(record.serial, target)
            assert caught.value.code == "RP:STA2"


def test_revoked_and_expired_are_terminal(repository, issue):
    revoked = repository.lodge(issue()).record
    repository.revoke(revoked.serial, "keyCompromise", requested_by="dcc")
    for target in "PIN":
        with pytest.raises(RepositoryError):
            repository.set_status(revoked.serial, target)
    with pytest.raises(RepositoryError) as caught:
        repository.revoke(revoked.serial, "keyCompromise")
    assert caught.value.code == "RP:REV2"

    later = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
    current = repository.lodge(issue()).record
    assert repository.expire_due(later) == 1
    assert repository.get(current.serial).status == "E"
    with pytest.raises(RepositoryError) as caught:
        repository.revoke(current.serial, "keyCompromise")
    assert caught.value.code == "RP:REV3"


def test_a_certificate_cannot_be_marked_expired_before_its_not_after(repository, issue):
    record = repository.lodge(issue()).record
    with pytest.raises(RepositoryError) as caught:
        repository.set_status(record.serial, "E")
    assert caught.value.code == "RP:STA4"
    assert repository.set_status(record.serial, "E", now=record.not_after + dt.timedelta(seconds=1)).status == "E"


def test_revocation_shows_r_at_once_and_indexes_it_for_the_right_list(repository, issue, instance):
    org = repository.lodge(issue()).record
    device = repository.lodge(issue("device", "00-DB-12-34-56-78-90-02")).record

    revocation = repository.revoke(org.serial, "ceasedToBeEligible", requested_by="party:X/aro:a")
    repository.revoke(device.serial, "keyCompromise", requested_by="dcc")

    assert repository.get(org.serial).status == "R" and repository.get(device.serial).status == "R"
    assert revocation.reason == "privilegeWithdrawn" and revocation.revocation_list == "crl"
    assert [r.serial for r in repository.revocations("crl")] == [org.serial]
    assert [r.revocation_list for r in repository.revocations()] == ["crl", None]


def test_unknown_revocation_reason_is_refused_and_nothing_changes(repository, issue):
    record = repository.lodge(issue()).record
    with pytest.raises(RepositoryError) as caught:
        repository.revoke(record.serial, "boredom")
    assert caught.value.code == "RP:REV1"
    assert repository.get(record.serial).status == "I"


def test_the_store_never_imports_the_ra():
    import ast
    from pathlib import Path

    import repository as package

    for path in Path(package.__path__[0]).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "smki.ra" or n.startswith("smki.ra.") for n in names), path


def test_eui_forms_are_interchangeable(repository, issue):
    repository.lodge(issue("organisation", "90-B3-D5-1F-30-01-00-00"))
    eui = Eui64.parse("90b3d51f30010000")
    assert repository.count(subject_eui=eui.hyphenated) == repository.count(subject_eui=eui.hex) == 1
    assert isinstance(repository, CertificateRepository)


def test_a_store_built_without_settings_reads_the_configured_policy_folder(instance, tmp_path, monkeypatch):
    """SMKI_POLICIES, not the folder beside the code: an installed package has no policies/ beside it."""
    import shutil

    import yaml

    policies = tmp_path / "policies"
    shutil.copytree(instance.settings.policies_dir, policies)
    path = policies / "repository.yaml"
    data = yaml.safe_load(path.read_text())
    data["publication"]["reconcile_minutes"] = 7
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("SMKI_POLICIES", str(policies))

    assert CertificateRepository(instance.database).settings.publication["reconcile_minutes"] == 7
