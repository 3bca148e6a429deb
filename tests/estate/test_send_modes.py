"""Every mode the sandbox sends (issue 13 item 5; the drills' contract): recovery (8), supplier (2), network operator
(3) and contingency (9) commands accepted by sandbox devices; method 2's ACB certificates in the supplier cells;
mode 9 with the right and a wrong symmetric key; each device's outcome named, with its codes, when faults are
injected; the Recovery key in custody refused with a code."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import select, update

from smki.bootstrap import CONTINGENCY_KEY, CONTINGENCY_WRAPPING_KEY
from smki.ca.contingency import wrap_contingency_key
from smki.ca.keystore import FileKeyStore
from smki.estate import processor
from smki.estate.faults import Fault
from smki.estate.jobs import EstateJobs
from smki.estate.models import EstateAnchor, EstateDevice, EstateSendOutcome
from smki.estate.plan import EstateError
from smki.estate.send_runs import SendRuns
from smki.estate.sending import (
    BAD_PLACEMENT,
    CELLS_NOT_REPLACED,
    FAILED,
    KEY_IN_CUSTODY,
    RECOVERED,
    REFUSED,
    CommandSender,
)
from smki.estate.testkeys import TestKeyStore
from smki.gbcs import StatusCode
from smki.instance import Instance
from smki.ra.demo import seed_demo
from tests.estate.conftest import issue_organisation

NOW = dt.datetime.now(dt.UTC)
SUPPLIER, NETWORK_OPERATOR, ACB = 2, 3, 4


@pytest.fixture
def estate(instance: Instance, jobs: EstateJobs) -> Instance:
    seed_demo(instance)
    TestKeyStore(instance).issue_test_credentials()
    jobs.service.create_run(4, types="ESME=1,GSME=1")
    jobs.run_pending()
    return instance


def cells(instance: Instance) -> dict[str, dict[tuple[int, str, int], tuple[bytes, str | None]]]:
    """Per device, each cell's certificate and its holder's Entity ID."""
    with instance.database.session() as session:
        anchors = {a.id: (a.der, a.subject_eui) for a in session.execute(
            select(EstateAnchor.id, EstateAnchor.der, EstateAnchor.subject_eui))}
        return {device_id: {(r, u, c): anchors[a] for r, u, c, a, _s in json.loads(stored) if a is not None}
                for device_id, stored in session.execute(select(EstateDevice.device_id, EstateDevice.cells))}


def holders(instance: Instance, role: int, usage: str) -> set[str]:
    return {held[1] for device in cells(instance).values() for key, held in device.items()
            if key[:2] == (role, usage) and held[1]}


def test_the_party_modes_are_accepted_and_every_outcome_is_named(estate: Instance) -> None:
    for mode, role in (("supplier", "supplier"), ("networkOperator", "networkOperator")):
        report = CommandSender(estate).send(mode, [role], collect_outcomes=True)
        assert (report.devices, report.verified) == (4, 4), report.problems
        assert report.by_status == {RECOVERED: 4}
        assert set(report.outcomes) == set(cells(estate))
        assert all(o.status == RECOVERED and o.code is None and set(o.codes.values()) == {0}
                   for o in report.outcomes.values())
    supplier = report.outcomes[sorted(report.outcomes)[0]]
    assert set(supplier.codes) == {"network_operator digitalSignature", "network_operator keyAgreement"}
    with pytest.raises(EstateError) as refused:
        CommandSender(estate).send("networkOperator", ["supplier"])
    assert refused.value.code == "ES:SND1"


def test_method_2_places_the_acbs_certificates_in_the_supplier_cells(estate: Instance) -> None:
    acb = estate.policies.environment.dcc_entity_identifiers["access_control_broker"].hex
    issued: dict[tuple[str, str, str], list[bytes]] = {}
    issue_organisation(estate, acb, "04", ["digitalSignature", "keyAgreement"], issued)
    report = CommandSender(estate).send("recovery", ["supplier"], placements={"supplier": "acb"},
                                        collect_outcomes=True)
    assert report.by_status == {RECOVERED: 4}, report.problems
    for device in cells(estate).values():
        supplier_cells = {key: held for key, held in device.items() if key[0] == SUPPLIER}
        assert len(supplier_cells) == 3
        assert all(holder == acb for _der, holder in supplier_cells.values())
        assert supplier_cells[(SUPPLIER, "digitalSignature", 0)][0] == issued[(acb, "04", "digitalSignature")][-1]
        assert supplier_cells[(SUPPLIER, "keyAgreement", 0)][0] == issued[(acb, "04", "keyAgreement")][-1]
    # the DCC holds the supplier cells now: the ACB has no supplier certificate to place by supplierBySupplier
    again = CommandSender(estate).send("supplier", ["supplier"], collect_outcomes=True)
    assert again.refused == {"ES:SND2": 4} and {o.status for o in again.outcomes.values()} == {"not_sent"}
    for bad in ({"networkOperator": "acb"}, {"supplier": "someone"}, {"root": b"not a certificate"}):
        with pytest.raises(EstateError) as refused:
            CommandSender(estate).send("recovery", ["supplier"], placements=bad)
        assert refused.value.code == BAD_PLACEMENT


def new_root(instance: Instance) -> bytes:
    """A new Root OCA carrying the same wrapped Contingency key (as a contingency recovery's new root would carry
    a new one): self-signed, keyCertSign."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sandbox Root after contingency")])
    wrapped = wrap_contingency_key(instance.keystore.signer(CONTINGENCY_KEY).public_key(),
                                   instance.custody.get_secret(CONTINGENCY_WRAPPING_KEY))
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, False, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.20"), wrapped),
                           critical=False)
            .sign(key, hashes.SHA256()).public_bytes(Encoding.DER))


def test_mode_9_replaces_the_root_only_with_the_right_symmetric_key(estate: Instance) -> None:
    root = new_root(estate)
    contingency = estate.keystore.signer(CONTINGENCY_KEY)
    before = cells(estate)
    wrong = CommandSender(estate).send("contingency", [], signer=contingency, symmetric_key=bytes(32),
                                       placements={"root": root}, collect_outcomes=True)
    assert wrong.by_status == {REFUSED: 4}
    assert {o.code for o in wrong.outcomes.values()} == {processor.SIGNATURE}
    assert cells(estate) == before

    right = CommandSender(estate).send("contingency", [], signer=contingency,
                                       symmetric_key=estate.custody.get_secret(CONTINGENCY_WRAPPING_KEY),
                                       placements={"root": root}, collect_outcomes=True)
    assert right.by_status == {RECOVERED: 4}, right.problems
    assert all(o.codes == {"root keyCertSign": 0} for o in right.outcomes.values())
    assert all(device[(0, "keyCertSign", 0)][0] == root for device in cells(estate).values())
    # the old hierarchy's certificates no longer chain to the devices' root
    for eui in holders(estate, SUPPLIER, "digitalSignature"):
        issue_organisation(estate, eui, "02", ["digitalSignature"], {})
    after = CommandSender(estate).send("recovery", ["supplier"], collect_outcomes=True)
    assert after.by_status == {FAILED: 4}
    assert all(o.code == CELLS_NOT_REPLACED and StatusCode.NO_TRUST_ANCHOR in o.codes.values()
               for o in after.outcomes.values())
    with pytest.raises(EstateError) as refused:
        CommandSender(estate).send("contingency", [], signer=contingency, symmetric_key=bytes(32))
    assert refused.value.code == BAD_PLACEMENT


def test_outcomes_name_the_faulty_devices_and_their_codes(estate: Instance) -> None:
    ids = sorted(cells(estate))
    with estate.database.session() as session:
        for device_id, fault in ((ids[0], Fault.OFFLINE), (ids[1], Fault.BUSY), (ids[2], Fault.TAMPERED_CELLS)):
            session.execute(update(EstateDevice).where(EstateDevice.device_id == device_id).values(faults=int(fault)))
    for eui in holders(estate, SUPPLIER, "digitalSignature"):
        issue_organisation(estate, eui, "02", ["digitalSignature"], {})
    report = CommandSender(estate).send("recovery", ["supplier"], collect_outcomes=True)
    outcomes = report.outcomes
    assert outcomes[ids[0]].status == FAILED and outcomes[ids[0]].code == processor.OFFLINE
    assert outcomes[ids[1]].status == FAILED and outcomes[ids[1]].code == CELLS_NOT_REPLACED
    assert set(outcomes[ids[1]].codes.values()) == {int(StatusCode.RESOURCES_BUSY)}
    assert outcomes[ids[3]].status == RECOVERED
    assert report.by_status[FAILED] >= 2 and report.devices == 4
    # without collect_outcomes the report holds counts only; the run's table holds every device's outcome
    quiet = CommandSender(estate).send("recovery", ["wanProvider", "supplier"], ids[:2])
    assert quiet.outcomes == {} and quiet.run_id is not None
    stored = dict(SendRuns(estate).outcomes(quiet.run_id))
    assert set(stored) == set(ids[:2]) and stored[ids[0]].code == processor.OFFLINE
    assert [d for d, _o in SendRuns(estate).outcomes(quiet.run_id, statuses=[RECOVERED])] == []
    with estate.database.session() as session:
        assert session.scalar(select(EstateSendOutcome.status).where(
            EstateSendOutcome.run_id == quiet.run_id, EstateSendOutcome.device_id == ids[1])) == FAILED


def test_a_key_in_custody_is_refused_with_a_code(estate: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    held = FileKeyStore.has
    monkeypatch.setattr(FileKeyStore, "has", lambda store, label: label != "recovery" and held(store, label))
    with pytest.raises(EstateError) as refused:
        CommandSender(estate).send("recovery", ["supplier"])
    assert refused.value.code == KEY_IN_CUSTODY and "ceremony" in refused.value.message
    # a signer given (from a ceremony) is used instead
    from smki.bootstrap import RECOVERY_KEY
    signer = FileKeyStore.signer(estate.keystore, RECOVERY_KEY)   # type: ignore[arg-type]
    report = CommandSender(estate).send("recovery", ["supplier"], signer=signer)
    assert report.by_status == {RECOVERED: 4}, report.problems


def test_a_damaged_or_foreign_answer_never_passes_as_verified(estate: Instance) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from smki.estate.processing import deliver
    from smki.estate.sending import _verified
    from smki.gbcs import GbcsError

    sender = CommandSender(estate)
    order = sender.order("supplier", ["supplier"])
    runs = SendRuns(estate, sender=sender)
    device = runs._devices(type("Row", (), {"first_number": 0, "last_number": 0, "numbers": None})(), None)[0]
    keys = sender.certificate_keys([device.ds_serial, device.ka_serial])
    command = sender.command(order, sender.keys(order), device, keys[device.ka_serial or ""])
    [delivered] = deliver(estate.database, {device.device_id: command})
    answer = delivered.processed.answer
    assert answer is not None
    key = keys[device.ds_serial or ""]
    assert _verified(answer, key).header.business_originator.hex == device.device_id
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(GbcsError):
        _verified(answer, other)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(answer) - 1), st.integers(1, 255), st.integers(0, 8))
    def damaged(index: int, flip: int, cut: int) -> None:
        octets = bytearray(answer)
        octets[index] ^= flip
        with pytest.raises(GbcsError):
            _verified(bytes(octets[:len(octets) - cut]), key)
    damaged()


def test_recovery_cells_take_the_hierarchys_current_recovery_certificate(estate: Instance) -> None:
    from smki.ca_rotation import certify_recovery_key

    rotation = certify_recovery_key(estate, ec.generate_private_key(ec.SECP256R1()).public_key(), actor="test")
    new = rotation.certificate.public_bytes(Encoding.DER)
    report = CommandSender(estate).send("recovery", ["recovery"], collect_outcomes=True)
    assert report.by_status == {RECOVERED: 4}, report.problems
    assert all(o.codes == {"recovery digitalSignature": 0} for o in report.outcomes.values())
    assert all(device[(1, "digitalSignature", 0)][0] == new for device in cells(estate).values())
