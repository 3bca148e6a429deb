"""An estate is built through the sandbox's own channels: Device Certificates issued by the one issuance path
and lodged in the Repository, cells loaded with the right certificates per type and owner."""

from __future__ import annotations

import json
from collections import Counter

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from repository.certificates import serial_text
from repository.store import CertificateRepository
from smki.estate import views
from smki.estate.jobs import EstateJobs
from smki.estate.models import EstateDevice
from smki.instance import Instance
from smki.models import IssuanceRecord
from tests.estate.conftest import Population


def test_an_estate_of_twenty_devices(instance: Instance, population: Population, jobs: EstateJobs) -> None:
    run_id = jobs.service.create_run(20, types="ESME=2,GSME=1,CHF=1", chunk_size=6)
    assert jobs.run_pending() == 4
    progress = jobs.service.progress(run_id)
    assert (progress.status, progress.devices_done, progress.chunks_done) == ("completed", 20, 4)

    with instance.database.session() as session:
        devices = session.execute(select(EstateDevice).order_by(EstateDevice.number)).scalars().all()
        types = Counter(d.device_type for d in devices)
        assert types == {"ESME": 10, "GSME": 5, "CHF": 5}
        ledger = {int(r.serial, 16): r for r in session.execute(select(IssuanceRecord)
                                                       .where(IssuanceRecord.channel == "estate")).scalars()}
        rows = [(d.device_id, d.device_type, d.ds_serial, d.ka_serial, d.ds_private_key, d.ka_private_key,
                 d.counters, d.supplier_party_id, d.network_operator_party_id) for d in devices]
    # Two Device Certificates per device, each in the ledger and in the Repository, naming the device and
    # certifying the key the device holds.
    assert len(ledger) == 40
    repository = CertificateRepository(instance.database)
    for device_id, device_type, ds, ka, ds_key, ka_key, counters, supplier, operator in rows:
        for serial, private in ((ds, ds_key), (ka, ka_key)):
            record = repository.get(serial)
            assert record is not None and record.status == "I" and record.device_id == device_id
            certificate = x509.load_der_x509_certificate(ledger[int(serial, 16)].certificate_der)
            held = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
            assert certificate.public_key().public_numbers() == held.public_key().public_numbers()
        assert repository.get(ds).usage == "DS" and repository.get(ka).usage == "KA"
        roles = set(json.loads(counters))
        if device_type == "CHF":
            assert roles == {"1", "4", "6"} and supplier is None and operator is None
        else:
            assert roles == {"1", "2", "3", "4", "5"} and supplier is not None and operator is not None
    # Owners are spread among the Parties holding the type's User Roles: both electricity suppliers own ESMEs.
    esme_suppliers = {r[7] for r in rows if r[1] == "ESME"}
    assert esme_suppliers == {population.parties["Volt Supply"], population.parties["Spark Energy"]}
    assert {r[7] for r in rows if r[1] == "GSME"} == {population.parties["Volt Supply"]}
    assert {r[8] for r in rows if r[1] == "GSME"} == {population.parties["Fen Gas Pipes"]}


def test_cells_hold_the_certificates_policy_names(instance: Instance, population: Population,
                                                  jobs: EstateJobs) -> None:
    jobs.service.create_run(4, types="ESME,CHF")
    jobs.run_pending()
    root = instance.hierarchy.certificate("root_oca")
    recovery = instance.hierarchy.certificate("recovery")
    dcc = instance.policies.environment.dcc_entity_identifiers
    policy = instance.policies.estate
    for device_id in ("00DB5A0000000000", "00DB5A0000000001"):
        view = views.show(instance, device_id)
        cells = {(c.role, c.key_usage, c.cell_usage): c for c in view.cells}
        expected = {(c.role, c.usage, c.cell_usage) for c in policy.device_types[view.device_type].cells}
        assert set(cells) == expected
        assert all(c.state == "installed" for c in view.cells)
        assert cells[("root", "keyCertSign", "management")].serial == serial_text(root.serial_number)
        assert cells[("recovery", "digitalSignature", "management")].serial == serial_text(recovery.serial_number)
        assert cells[("accessControlBroker", "keyAgreement", "management")].subject_eui == dcc[
            "access_control_broker"].hex
        if view.device_type == "CHF":
            assert cells[("wanProvider", "digitalSignature", "management")].subject_eui == dcc["wan_provider"].hex
            continue
        supplier_eui = population.euis[(view.supplier, "IS")]
        ds, ka, top_up = (cells[("supplier", u, c)] for u, c in (("digitalSignature", "management"),
                                                                  ("keyAgreement", "management"),
                                                                  ("keyAgreement", "prePaymentTopUp")))
        assert ds.subject_eui == ka.subject_eui == top_up.subject_eui == supplier_eui
        # The top-up cell takes the supplier's other key-agreement certificate.
        assert ka.serial != top_up.serial
        kas = {serial_text(x509.load_der_x509_certificate(d).serial_number)
               for d in population.issued[(supplier_eui, "02", "keyAgreement")]}
        assert {ka.serial, top_up.serial} == kas
        operator = cells[("networkOperator", "digitalSignature", "management")]
        assert operator.subject_eui == population.euis[(view.network_operator, "ED")]
        assert cells[("transitionalCoS", "digitalSignature", "management")].subject_eui == dcc["transitional_cos"].hex
    with instance.database.session() as session:
        cells = [len(json.loads(c)) for c in session.scalars(select(EstateDevice.cells).order_by(EstateDevice.number))]
    assert cells == [9, 4, 9, 4]


def test_faults_are_data_on_the_devices(instance: Instance, population: Population, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Faulty devices as policy draws them: their flags, and their cells' state, counted by anchor state."""
    import shutil

    import yaml

    from smki.core.config import DEFAULT_POLICIES_DIR, Settings

    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    data = yaml.safe_load((policies / "estate.yaml").read_text())
    data["faults"].update({"tampered_cells": 1.0, "busy": 0.5})
    (policies / "estate.yaml").write_text(yaml.safe_dump(data))
    faulty = Instance(Settings(instance.settings.instance_dir, instance.settings.database_url, policies, None))
    jobs = EstateJobs.build(faulty, f"sqlite:///{tmp_path / 'queue.db'}")
    jobs.service.create_run(6, types="ESME,CHF")
    jobs.run_pending()
    view = views.show(faulty, "00DB5A0000000000")
    assert "tampered_cells" in view.faults
    assert {c.state for c in view.cells if c.role != "root"} == {"tampered"}
    assert {c.state for c in view.cells if c.role == "root"} == {"installed"}
    counted = views.counts(faulty)
    assert counted.devices_by_anchor_state == {("ESME", "tampered"): 3, ("CHF", "tampered"): 3}
    busy = sum(n for (_t, fault), n in counted.faults_by_type.items() if fault == "busy")
    with faulty.database.session() as session:
        flagged = sum(1 for f in session.scalars(select(EstateDevice.faults)) if f & 2)
    assert flagged == busy
