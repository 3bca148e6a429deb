"""The Device CSR services issue through the one issuance path (issue 8, items 1 and 10): its lint before
release (``policies/issuance.yaml``) and its per-device limit, which holds under concurrent clients."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select, update

import smki.issuance
from repository.certificates import describe
from repository.models import RepositoryCertificate
from repository.store import CertificateRepository
from smki.ca.builder import CertificateRequest, ProfileBuilder
from smki.ca.profile import ExtensionSpec
from smki.core.config import Settings
from smki.core.policy import Policies
from smki.devicecsr.gate import LedgerGate
from smki.devicecsr.models import DeviceCsrChunk, DeviceCsrOutcome
from smki.devicecsr.runtime import DeviceCsrRuntime
from smki.instance import Instance
from smki.issuance import DEVICE_LIMIT, IssuanceService, device_certificate_counts
from smki.models import IssuanceRecord
from smki.ra.lodging import facts_of
from tests.ca import craft
from tests.devicecsr.conftest import (
    CALLERS,
    OWNED_DEVICE,
    SUPPLIER,
    adhoc_xml,
    batch_xml,
    csr_b64,
    headers,
    parse_answer,
    seed_certificates,
    text,
)

ADHOC = "/1.0/PortalCSRAdHoc/DeviceCertificateSigningRequest"
CLIENTS = 8


def issued_for(instance: Instance, device: str) -> int:
    with instance.database.session() as session:
        return session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.subject_id == device)) or 0


def test_eight_ad_hoc_clients_near_the_threshold_get_exactly_what_fits(app_for, runtime, instance):
    device = "00DB00000000D097"
    seed_certificates(instance, device, 97)
    app = app_for(runtime)
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> tuple[int, str | None, str | None]:
        body = adhoc_xml(csr_b64(device), f"req-{n}")
        web = app.test_client()
        start.wait(timeout=30)
        response = web.post(ADHOC, data=body, headers=headers())
        answer = parse_answer(response.data)
        return response.status_code, text(answer, "{}Status"), text(answer, "{}Error/{}ErrorCode")

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(client, range(CLIENTS)))

    assert {status for status, _, _ in answers} == {200}
    assert Counter((s, c) for _, s, c in answers) == Counter(
        {("SUCCESS", None): 2, ("ISSUANCE_ANOMALY", DEVICE_LIMIT): CLIENTS - 2}), answers
    threshold = runtime.policy.certificate_threshold
    assert issued_for(instance, device) == threshold - 1
    with instance.database.session() as session:
        assert device_certificate_counts(session, [device]) == {device: threshold - 1}


def test_concurrent_batch_chunks_for_one_device_issue_only_what_fits(runtime, instance):
    device = "00DB00000000D098"
    seed_certificates(instance, device, 97)
    service = runtime.batches
    batches = [service.submit(SUPPLIER, batch_xml([(f"b{n}-{k}", csr_b64(device)) for k in range(2)]),
                              channel="batch", reference=f"b{n}", csr_count=2) for n in range(4)]
    for batch_id in batches:
        service.parse(batch_id)
    start = threading.Barrier(len(batches))

    def worker(batch_id: int) -> int:
        start.wait(timeout=30)
        return service.process_chunk(batch_id, 0)

    with ThreadPoolExecutor(len(batches)) as pool:
        assert list(pool.map(worker, batches)) == [2] * len(batches)

    with instance.database.session() as session:
        statuses = Counter((status, code) for status, code in session.execute(
            select(DeviceCsrOutcome.status, DeviceCsrOutcome.error_code)))
    assert statuses == Counter({("SUCCESS", None): 2, ("ISSUANCE_ANOMALY", DEVICE_LIMIT): 6}), statuses
    assert issued_for(instance, device) == runtime.policy.certificate_threshold - 1


@pytest.fixture
def linted_instance(instance: Instance, tmp_path: Path) -> Instance:
    """The same instance with ``device: true`` under lint_before_release in policies/issuance.yaml."""
    policies = tmp_path / "policies"
    shutil.copytree(instance.settings.policies_dir, policies)
    path = policies / "issuance.yaml"
    rules = yaml.safe_load(path.read_text())
    rules["lint_before_release"]["device"] = True
    path.write_text(yaml.safe_dump(rules))
    settings = instance.settings
    return Instance(Settings(settings.instance_dir, settings.database_url, policies, None))


def linted_runtime(instance: Instance, tmp_path: Path) -> DeviceCsrRuntime:
    gate = LedgerGate(instance.database, CALLERS, {OWNED_DEVICE: "P-GS"})
    return DeviceCsrRuntime.build(instance, gate=gate, queue=f"sqlite:///{tmp_path / 'linted-queue.db'}",
                                  on_issued=lambda issued: None)


def run_batch(runtime: DeviceCsrRuntime, devices: list[int]) -> list[tuple[str, str | None]]:
    service = runtime.batches
    batch_id = service.submit(SUPPLIER, batch_xml([(f"c{n}", csr_b64(d)) for n, d in enumerate(devices)]),
                              channel="batch", reference="linted", csr_count=len(devices))
    service.parse(batch_id)
    assert service.process_chunk(batch_id, 0) == len(devices)
    with runtime.instance.database.session() as session:
        return [(row.status, row.error_code) for row in session.execute(
            select(DeviceCsrOutcome).where(DeviceCsrOutcome.batch_id == batch_id).order_by(DeviceCsrOutcome.seq)
        ).scalars()]


def test_device_true_lints_every_device_certificate_the_batch_service_issues(linted_instance, tmp_path,
                                                                            monkeypatch):
    linted: list[str] = []
    real = smki.issuance.release_check

    def counting(certificate: x509.Certificate, profile: str, policies: Policies, der: bytes | None = None) -> None:
        linted.append(profile)
        real(certificate, profile, policies, der)

    monkeypatch.setattr(smki.issuance, "release_check", counting)

    outcomes = run_batch(linted_runtime(linted_instance, tmp_path), [0x00DB00000000E001, 0x00DB00000000E002])

    assert outcomes == [("SUCCESS", None), ("SUCCESS", None)]
    assert linted == ["device", "device"]


def test_a_faulty_device_certificate_is_refused_ca_e207_by_the_batch_service(linted_instance, tmp_path,
                                                                           monkeypatch):
    """A CA that produces a Device Certificate without its SKI: the lint before release refuses each one,
    the batch answers CA_ERROR CA:E207 for it, and the ledger records nothing."""
    original = ProfileBuilder._extension

    def drop_ski(self: ProfileBuilder, spec: ExtensionSpec, request: CertificateRequest,
                 ski: bytes) -> x509.ExtensionType | None:
        return None if spec.type == "subjectKeyIdentifier" else original(self, spec, request, ski)

    monkeypatch.setattr(ProfileBuilder, "_extension", drop_ski)

    outcomes = run_batch(linted_runtime(linted_instance, tmp_path), [0x00DB00000000E003, 0x00DB00000000E004])

    assert outcomes == [("CA_ERROR", "CA:E207"), ("CA_ERROR", "CA:E207")]
    with linted_instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.channel == "batch")) == 0


def test_the_repository_record_built_from_what_the_ca_knows_is_what_the_certificate_says(instance):
    """Lodging does not parse the certificate again; its record must equal the Repository's own reading."""
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    csrs = [service.validate(raw, channel="api", requested_by=None) for raw in (
        craft.device(craft.p256("facts-ds")), craft.device(craft.p256("facts-ka"), usage="keyAgreement"),
        craft.organisation(craft.p256("facts-org")), craft.organisation(craft.p256("facts-org-ka"), "02",
                                                                        usage="keyAgreement"))]
    issuers: dict[str, str] = {}
    for issued in service.issue_many(csrs, channel="api", requested_by=None):
        assert facts_of(issued, issuers) == describe(issued.certificate.public_bytes(Encoding.DER))


def test_a_chunk_and_its_repository_records_commit_together(runtime, instance, monkeypatch):
    service = runtime.batches
    entries = [("a", csr_b64(0x00DB00000000F001)), ("b", csr_b64(0x00DB00000000F002))]
    batch_id = service.submit(SUPPLIER, batch_xml(entries), channel="batch", reference="r", csr_count=2)
    service.parse(batch_id)
    real = CertificateRepository.lodge_many

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the Repository's table is unavailable")

    monkeypatch.setattr(CertificateRepository, "lodge_many", refuse)
    assert service.process_chunk(batch_id, 0) == 0  # handed back: nothing of the chunk committed

    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.channel == "batch")) == 0
        assert session.scalar(select(func.count()).select_from(DeviceCsrOutcome)) == 0

    monkeypatch.setattr(CertificateRepository, "lodge_many", real)
    with instance.database.session() as session:  # the retry is due now rather than after its delay
        session.execute(update(DeviceCsrChunk).values(state="queued", lease_until=None))
    assert service.process_chunk(batch_id, 0) == 2
    with instance.database.session() as session:
        ledger = set(session.scalars(select(IssuanceRecord.serial).where(IssuanceRecord.channel == "batch")))
        lodged = {serial.zfill(32) for serial in session.scalars(
            select(RepositoryCertificate.serial).where(RepositoryCertificate.kind == "device"))}
    assert len(ledger) == 2 and ledger <= lodged
