"""Concurrent clients across every issuing route of the RA's JSON API: no request fails because another
arrived at the same moment, every decision takes effect once, and the audit chain stays intact.

Real clients over loopback HTTP, 16 at once, a bounded number of requests (about 200)."""

from __future__ import annotations

import base64
import re
import secrets
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from smki.cli import main
from smki.core.eui64 import Eui64
from smki.csrgen import device_csr
from smki.ra import audit
from smki.ra.models import Appointment, AuditRecord, Credential, UserIdentifier
from smki.ra.service import RegistrationAuthority
from tests.devicecsr.conftest import adhoc_xml
from tests.ra.conftest import NETWORK_ED, SUPPLIER_A_IS, Population, auth, device_csr_pem, new_key, org_csr_pem

CLIENTS = 16
P = "/api/v1/ra"


@dataclass(frozen=True)
class Answer:
    route: str
    status: int
    body: dict[str, Any]


def system_csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def run_concurrently(tasks: list[Callable[[requests.Session], list[Answer]]]) -> list[Answer]:
    """Each task runs on one of CLIENTS threads, each thread with its own HTTP connection."""
    def client(share: list[Callable[[requests.Session], list[Answer]]]) -> list[Answer]:
        with requests.Session() as http:
            return [answer for task in share for answer in task(http)]

    shares = [tasks[i::CLIENTS] for i in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        return [answer for answers in pool.map(client, shares) for answer in answers]


def call(http: requests.Session, route: str, url: str, **kwargs: Any) -> Answer:
    response = http.post(url, timeout=120, **kwargs)
    try:
        body = response.json()
    except ValueError:
        body = {"text": response.text[:200]}
    return Answer(route, response.status_code, body)


def test_sixteen_clients_on_every_issuing_route(live_server: str, ra: RegistrationAuthority,
                                               population: Population, monkeypatch) -> None:
    base = live_server + P
    operator = auth(population.operator)
    tasks: list[Callable[[requests.Session], list[Answer]]] = []

    def organisation_json(csr: str) -> Callable[[requests.Session], list[Answer]]:
        return lambda http: [call(http, "csr/organisation (JSON)", f"{base}/csr/organisation",
                                  headers=auth(population.aro_a), json={"csr": csr})]

    def organisation_raw(csr: str) -> Callable[[requests.Session], list[Answer]]:
        return lambda http: [call(http, "csr/organisation (PKCS#10)", f"{base}/csr/organisation",
                                  headers={**auth(population.aro_network), "Content-Type": "application/pkcs10"},
                                  data=csr.encode())]

    def device(csr: str) -> Callable[[requests.Session], list[Answer]]:
        return lambda http: [call(http, "csr/device", f"{base}/csr/device", headers=auth(population.aro_a),
                                  json={"csr": csr})]

    def through_approval(form: str, payload: dict[str, Any], submitter: dict[str, str], checks: list[str]
                         ) -> Callable[[requests.Session], list[Answer]]:
        def task(http: requests.Session) -> list[Answer]:
            submitted = call(http, f"forms/{form}", f"{base}/forms/{form}", headers=submitter, json=payload)
            if submitted.status != 201:
                return [submitted]
            number = submitted.body["id"]
            verified = call(http, "verification", f"{base}/submissions/{number}/verification", headers=operator,
                            json={"checks": dict.fromkeys(checks, True)})
            approved = call(http, "approval", f"{base}/submissions/{number}/approval", headers=operator)
            return [submitted, verified, approved]
        return task

    def adhoc(csr: str) -> Callable[[requests.Session], list[Answer]]:
        """The Appendix M ad hoc service: its decisions and their audit record are written in the
        service's own transaction, with the ledger rows (smki.ra.device_decisions)."""
        def task(http: requests.Session) -> list[Answer]:
            response = http.post(f"{live_server}/1.0/PortalCSRAdHoc/DeviceCertificateSigningRequest", timeout=120,
                                 data=adhoc_xml(csr), headers={**auth(population.aro_a),
                                                               "Content-Type": "application/xml"})
            status = re.search(r"<(?:\w+:)?Status>([A-Z_]+)<", response.text)
            return [Answer("adhoc", response.status_code, {"code": status[1] if status else response.text[:200]})]
        return task

    # the ad hoc service replaces a certificate, so each of its devices has one first
    replaced = [f"00DB13{secrets.token_hex(5).upper()}" for _ in range(4)]
    for device_id in replaced:
        ra.submit_device_csr(ra.authenticate_token(population.aro_a.token), device_csr_pem(device_id))
    tasks += [adhoc(base64.b64encode(device_csr(new_key(), Eui64.parse(replaced[n % 4])).public_bytes(
        serialization.Encoding.DER)).decode()) for n in range(16)]
    tasks += [organisation_json(org_csr_pem(SUPPLIER_A_IS)) for _ in range(64)]
    tasks += [organisation_raw(org_csr_pem(NETWORK_ED, "03")) for _ in range(16)]
    tasks += [device(device_csr_pem(f"00DB12{secrets.token_hex(5).upper()}")) for _ in range(32)]
    tasks += [through_approval("system_credential_request", {"system_name": f"adaptor-{n}", "csr": system_csr()},
                               auth(population.aro_a), ["system_verified"]) for n in range(16)]
    # each approval allocates the next free User ID: a counter written by concurrent approvals
    tasks += [through_approval("party_registration", {
        "legal_name": f"Concurrent Supply {n} Ltd", "company_number": f"{n:08d}", "registered_address": "1 Quay St",
        "party_category": "small_supplier", "user_roles": [{"role": "IS"}, {"role": "GS"}]}, {},
        ["company_checked"]) for n in range(16)]
    order = list(range(len(tasks)))
    secrets.SystemRandom().shuffle(order)

    answers = run_concurrently([tasks[i] for i in order])

    failures = [a for a in answers if a.status >= 500]
    assert not failures, Counter((a.route, a.status, a.body.get("code")) for a in failures)
    unexpected = [a for a in answers
                  if a.status not in (200, 201) or (a.route == "adhoc" and a.body["code"] != "SUCCESS")]
    assert not unexpected, Counter((a.route, a.status, a.body.get("code")) for a in unexpected)
    issued = [a for a in answers if a.route.startswith("csr/")]
    assert len(issued) == 112 and len({a.body["serial"] for a in issued}) == 112

    with ra.database.session() as session:
        issued_records = session.scalar(select(func.count()).select_from(AuditRecord)
                                         .where(AuditRecord.action == "certificate.issued"))
        systems = session.scalar(select(func.count()).select_from(Credential).where(
            Credential.kind == "client_certificate"))
        allocated = list(session.execute(select(UserIdentifier.eui64)).scalars())
    assert issued_records == 112 + 4 and systems == 16
    assert len(allocated) == len(set(allocated))

    verification = audit.verify(ra.database)
    assert verification.intact, verification.problems
    monkeypatch.setenv("SMKI_INSTANCE", str(ra.instance.settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", ra.instance.settings.database_url)
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 0 and "audit chain intact" in result.output and "NOTE" not in result.output, \
        result.output


def test_a_decision_races_with_itself_and_takes_effect_once(live_server: str, ra: RegistrationAuthority,
                                                           population: Population) -> None:
    """Eight operators approve the same verified ARO nomination at the same moment: one approval, one
    appointment, one token; the others are told it is already approved."""
    base = live_server + P
    with requests.Session() as http:
        nominated = http.post(f"{base}/parties/{population.supplier_a}/aros", headers=auth(population.sro_a), json={
            "name": "Rae Raced", "email": "rae@alpha.example", "scopes": ["organisation"],
            "acts_for": [population.supplier_a]}, timeout=60).json()
        verified = http.post(f"{base}/submissions/{nominated['id']}/verification", headers=auth(population.operator),
                             json={"checks": {"identity_verified": True, "screening_passed": True}}, timeout=60)
        assert verified.status_code == 200, verified.text

    def approve(_: int) -> tuple[int, dict[str, Any]]:
        with requests.Session() as http:
            response = http.post(f"{base}/submissions/{nominated['id']}/approval",
                                 headers=auth(population.operator), timeout=120)
            return response.status_code, response.json()

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(approve, range(8)))
    statuses = Counter(status for status, _ in outcomes)
    assert statuses[200] == 1 and sum(statuses.values()) == 8, outcomes
    assert all(body["code"] == "WF:FRM03" for status, body in outcomes if status != 200), outcomes
    with ra.database.session() as session:
        appointments = list(session.execute(select(Appointment).where(
            Appointment.submission_id == nominated["id"])).scalars())
        assert len(appointments) == 1
        tokens = session.scalar(select(func.count()).select_from(Credential).where(
            Credential.person_id == appointments[0].person_id))
    assert tokens == 1
    assert audit.verify(ra.database).intact
