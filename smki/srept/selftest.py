"""``smki srept selftest``: a model Party that plays every scenario of the catalogue against a running sandbox,
from outside, over HTTP, as a new Party would; the proof that the catalogue can be passed, and an example client.

It registers a Party on the RAPP forms, has a director declare it and nominate its SRO, opens a SREPT run as that
SRO, has an ARO nominated, and then plays each scenario, naming it in ``X-SREPT-Scenario`` (and sending the run's
key in ``X-SREPT-Run-Key`` where a scenario calls with no credential, or a wrong one). The RA's part (verifying
and approving forms, approving the revocation, attesting the extracts the sandbox serves no SFTP for) is played
with an RA operator's API token, as the RA would play it. At the end it reads the run's progress, fetches and
verifies the evidence pack, and (with ``record_pass``) records the Party's SREPT pass.
"""

from __future__ import annotations

import base64
import io
import re
import secrets
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smki.core.eui64 import Eui64
from smki.csrgen import device_csr, organisation_csr
from smki.devicecsr.xml import NAMESPACE
from smki.srept.recording import RUN_KEY_HEADER, SCENARIO_HEADER

RA, SREPT, REPOSITORY = "/api/v1/ra", "/api/v1/srept", "/api/v1/repository"
VERSION = "1.0"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SERIAL = re.compile(r'id="serial"[^>]*>\s*([0-9A-F]+)\s*<')


class SelftestFailed(Exception):
    """A step of the model Party went wrong in a way that stops the rest (setting up, a timeout)."""


@dataclass
class Outcome:
    scenarios: dict[str, str] = field(default_factory=dict)   # scenario id -> state, as the sandbox reports
    run_id: int | None = None
    party_id: int | None = None
    pack_problems: list[str] = field(default_factory=list)
    pass_recorded: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def all_passed(self) -> bool:
        return bool(self.scenarios) and all(state == "passed" for state in self.scenarios.values()) \
            and not self.pack_problems


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _b64(csr: x509.CertificateSigningRequest) -> str:
    return base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()


def _device(number: int) -> Eui64:
    """A Device ID no earlier run of the self-test used (random high bytes)."""
    return Eui64(secrets.token_bytes(5) + number.to_bytes(3, "big"))


def _hyphenated(eui: str) -> str:
    return str(Eui64.parse(eui))


class ModelParty:
    def __init__(self, url: str, operator_token: str, *, timeout: float = 180.0,
                 say: Callable[[str], None] = lambda _line: None, verify_tls: bool | str = True) -> None:
        self.url = url.rstrip("/")
        self.operator = {"Authorization": f"Bearer {operator_token}"}
        self.timeout = timeout
        self.say = say
        self.http = requests.Session()
        self.http.verify = verify_tls
        self.outcome = Outcome()
        self.run_key = ""
        self.aro: dict[str, str] = {}
        self.user_ids: dict[str, str] = {}
        self.devices = [_device(n) for n in (1, 2, 3)]

    # --- HTTP ------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, scenario: str | None = None, run_key: bool = False,
             headers: dict[str, str] | None = None, session: requests.Session | None = None,
             **options: Any) -> requests.Response:
        sent = dict(headers or {})
        if scenario:
            sent[SCENARIO_HEADER] = scenario
        if run_key:
            sent[RUN_KEY_HEADER] = self.run_key
        response = (session or self.http).request(method, self.url + path, headers=sent, timeout=60,
                                                  allow_redirects=False, **options)
        if scenario:
            self.say(f"  {scenario:<7} {method} {path.split('?')[0]} -> {response.status_code}")
        return response

    def _json(self, response: requests.Response, expected: int = 200) -> Any:
        if response.status_code != expected:
            raise SelftestFailed(f"{response.request.method} {response.request.path_url}: HTTP {response.status_code}"
                                 f" ({response.text[:300]})")
        return response.json()

    def _aro(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.aro['api_token']}"}

    def _form(self, name: str, payload: dict[str, Any], checks: list[str], headers: dict[str, str] | None = None,
              scenario: str | None = None) -> dict[str, Any]:
        """Submit a RAPP form and have the RA verify and approve it; the approved submission (with any
        credentials it issued, shown once)."""
        submitted = self._json(self.call("POST", f"{RA}/forms/{name}", json=payload, headers=headers,
                                         scenario=scenario), 201)
        number = submitted["id"]
        self._json(self.call("POST", f"{RA}/submissions/{number}/verification", headers=self.operator,
                             json={"checks": dict.fromkeys(checks, True)}))
        return dict(self._json(self.call("POST", f"{RA}/submissions/{number}/approval", headers=self.operator,
                                         json={})))

    @staticmethod
    def _csrf(page: requests.Response) -> str:
        found = _CSRF.search(page.text)
        if not found:
            raise SelftestFailed(f"{page.request.path_url} carries no form token")
        return found.group(1)

    # --- becoming a Party --------------------------------------------------------------------------------

    def register(self) -> None:
        tag = secrets.token_hex(3).upper()
        registered = self._form("party_registration", {
            "legal_name": f"SREPT Model Party {tag} Ltd", "company_number": f"MP{secrets.token_hex(3).upper()}",
            "registered_address": "1 Rehearsal Row, Testington", "party_category": "large_supplier",
            "user_roles": [{"role": "IS"}, {"role": "GS"}]}, ["company_checked"])
        party = registered["result"]["organisation_id"]
        self.outcome.party_id = party
        self.user_ids = registered["result"]["user_ids"]
        declaration = self._form("director_declaration", {
            "organisation_id": party, "name": "Dana Director", "email": f"dana.{tag.lower()}@model.example",
            "capacity": "director", "declaration": True}, ["identity_verified", "authority_checked"])
        sro = self._form("sro_nomination", {
            "organisation_id": party, "declaration_id": declaration["id"], "name": "Simon SRO",
            "email": f"simon.{tag.lower()}@model.example"}, ["identity_verified"])
        self.sro = {"Authorization": f"Bearer {sro['credentials']['api_token']}"}
        self.say(f"registered Party {party} (IS {self.user_ids['IS']}, GS {self.user_ids['GS']}) and its SRO")

    def open_run(self) -> None:
        opened = self._json(self.call("POST", f"{SREPT}/runs", headers=self.sro,
                                      json={"organisation_id": self.outcome.party_id}), 201)
        self.outcome.run_id, self.run_key = opened["id"], opened["run_key"]
        self.say(f"SREPT run {opened['id']} open ({opened['scenarios']} scenarios); recording from "
                 f"{opened['recording_from']}")
        # every web worker re-reads the open runs at most this often (policies/srept/recording.yaml)
        time.sleep(1.2)

    def nominate_aro(self) -> None:
        party = self.outcome.party_id
        approved = self._form("aro_nomination", {
            "organisation_id": party, "name": "Ari ARO", "email": f"ari.{secrets.token_hex(3)}@model.example",
            "scopes": ["organisation", "device", "repository"], "acts_for": [party]},
            ["identity_verified", "screening_passed"], headers=self.sro)
        self.aro = approved["credentials"]
        self.say("ARO nominated: API token, Repository API key and portal login issued")

    # --- the scenarios -----------------------------------------------------------------------------------

    def organisation_csrs(self) -> None:
        own = Eui64.parse(self.user_ids["IS"])
        stranger = Eui64(b"\x90\xb3\xd5\x1f" + secrets.token_bytes(4))
        issued = self.call("POST", f"{RA}/csr/organisation", scenario="ORG-01", headers=self._aro(),
                           json={"csr": _pem(organisation_csr(_key(), "02", own))})
        self.serial = self._json(issued, 201)["serial"]
        second = self._json(self.call("POST", f"{RA}/csr/organisation", scenario="ORG-01", headers=self._aro(),
                                      json={"csr": _pem(organisation_csr(_key(), "02", own))}), 201)
        self.rejected_serial = second["serial"]
        self.call("POST", f"{RA}/csr/organisation", scenario="ORG-02", headers=self._aro(),
                  json={"csr": _pem(organisation_csr(_key(), "02", stranger))})
        self.call("POST", f"{RA}/csr/organisation", scenario="ORG-03", headers=self._aro(),
                  json={"csr": _pem(organisation_csr(_key(), "03", own))})
        self.call("POST", f"{RA}/csr/organisation", scenario="ORG-04", headers=self._aro(),
                  json={"csr": "this is not a certificate signing request"})
        self.call("GET", f"{RA}/certificates/{self.serial}", scenario="ORG-05", headers=self._aro())
        self.call("POST", f"{RA}/csr/organisation", scenario="ORG-06", run_key=True,
                  json={"csr": _pem(organisation_csr(_key(), "02", own))})

    def _batch_xml(self, entries: list[tuple[str, str]], reference: str) -> bytes:
        body = "".join(f'<DeviceCSR ID="{ident}">{csr}</DeviceCSR>' for ident, csr in entries)
        return (f'<?xml version="1.0"?><SubmitCSRBatch xmlns="{NAMESPACE}" ID="{reference}">'
                f"<Version>1.0</Version>{body}</SubmitCSRBatch>").encode()

    def _wait(self, what: str, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        while not check():
            if time.monotonic() > deadline:
                raise SelftestFailed(f"gave up waiting for {what} after {self.timeout:.0f} s")
            time.sleep(0.5)

    def batched_device_csrs(self) -> None:
        xml_headers = {**self._aro(), "Content-Type": "application/xml"}
        path = f"/{VERSION}/PortalCSRBatch"
        entries = [(f"csr-{n}", _b64(device_csr(_key(), device, "digitalSignature")))
                   for n, device in enumerate(self.devices[:2])]
        submitted = self.call("POST", f"{path}/SubmitCSRBatch", scenario="BAT-01", headers=xml_headers,
                              data=self._batch_xml(entries, "model-party"))
        found = re.search(r"<(?:\w+:)?BatchId>([0-9]+)<", submitted.text)
        if not found:
            raise SelftestFailed(f"the batch was not accepted: {submitted.text[:300]}")
        batch = found.group(1)

        def completed() -> bool:
            # polled undeclared: a PENDING answer is not a failed attempt at BAT-02
            answer = self.call("GET", f"{path}/CSRBatchResult?BatchId={batch}", headers=self._aro())
            return "<BatchStatus>COMPLETED</BatchStatus>" in answer.text or ":BatchStatus>COMPLETED<" in answer.text
        self._wait(f"batch {batch} to complete", completed)
        self.call("GET", f"{path}/CSRBatchResult?BatchId={batch}", scenario="BAT-02", headers=self._aro())
        self.call("POST", f"{path}/SubmitCSRBatch", scenario="BAT-03", headers=xml_headers,
                  data=b"<SubmitCSRBatch><unclosed></SubmitCSRBatch>")
        self.call("GET", f"{path}/CSRBatchResult?BatchId=999999999", scenario="BAT-04", headers=self._aro())
        self.call("POST", f"{path}/SubmitCSRBatch", scenario="BAT-05", run_key=True,
                  headers={"Content-Type": "application/xml"}, data=self._batch_xml(entries[:1], "no-credential"))

    def _adhoc(self, csr_b64: str, scenario: str, ident: str = "req-1") -> requests.Response:
        body = (f'<DeviceCertificateSigningRequest xmlns="{NAMESPACE}" ID="{ident}"><Version>1.0</Version>'
                f"<CertificateSigningRequest>{csr_b64}</CertificateSigningRequest>"
                "</DeviceCertificateSigningRequest>").encode()
        return self.call("POST", f"/{VERSION}/PortalCSRAdHoc/DeviceCertificateSigningRequest", scenario=scenario,
                         headers={**self._aro(), "Content-Type": "application/xml"}, data=body)

    def adhoc_device_csrs(self) -> None:
        known, unknown = self.devices[0], _device(9)
        self._adhoc(_b64(device_csr(_key(), known, "keyAgreement")), "ADH-01")
        self._adhoc(_b64(device_csr(_key(), unknown, "keyAgreement")), "ADH-02")
        self.call("POST", f"/{VERSION}/PortalCSRAdHoc/DeviceCertificateSigningRequest", scenario="ADH-03",
                  headers={**self._aro(), "Content-Type": "application/xml"},
                  data=f'<DeviceCertificateSigningRequest xmlns="{NAMESPACE}" ID="x"/>'.encode())
        der = bytearray(device_csr(_key(), known, "keyAgreement").public_bytes(serialization.Encoding.DER))
        der[-5] ^= 0x01  # inside the signature's integers: the CSR no longer verifies
        self._adhoc(base64.b64encode(bytes(der)).decode(), "ADH-04")

    def repository_service(self) -> None:
        key = self.aro["repository_api_key"]
        xml = {"Content-Type": "application/xml"}
        search = f"/services/certificatesearch?apikey={key}"
        own = _hyphenated(self.user_ids["IS"])

        def by_subject(eui: str) -> bytes:
            return (f"<CertificateSearchRequest><CertificateSubjectName>{eui}</CertificateSubjectName>"
                    "</CertificateSearchRequest>").encode()
        self.call("POST", search, scenario="REP-01", headers=xml, data=by_subject(own))
        self.call("POST", search, scenario="REP-02", headers=xml, data=(
            f"<CertificateSearchRequest><CertificateSubjectAltName>{self.devices[0]}</CertificateSubjectAltName>"
            "</CertificateSearchRequest>").encode())
        self.call("POST", f"/services/retrievecertificate?apikey={key}", scenario="REP-03", headers=xml, data=(
            f"<CertificateDataRequest><CertificateSerial>{self.serial}</CertificateSerial>"
            "</CertificateDataRequest>").encode())
        self.call("POST", "/services/certificatesearch?apikey=not-a-key", scenario="REP-04", run_key=True,
                  headers=xml, data=by_subject(own))
        self.call("POST", search, scenario="REP-05", headers=xml,
                  data=by_subject(str(Eui64(b"\x90\xb3\xd5\x1f" + secrets.token_bytes(4)))))
        self.call("POST", search, scenario="REP-06", headers=xml, data=by_subject("not-an-eui-64"))

    def repository_access(self) -> None:
        portal = requests.Session()
        portal.verify = self.http.verify
        form = self._csrf(self.call("GET", "/repository/login", session=portal))
        self.call("POST", "/repository/login", scenario="RPA-02", session=portal,
                  data={"username": self.aro["repository_username"], "password": "not the password",
                        "csrf_token": form})
        form = self._csrf(self.call("GET", "/repository/login", session=portal))
        self.call("POST", "/repository/login", scenario="RPA-01", session=portal,
                  data={"username": self.aro["repository_username"], "password": self.aro["repository_password"],
                        "csrf_token": form})
        self.call("GET", f"/repository/certificates/{self.serial}", scenario="RPA-03", session=portal)
        self.call("GET", f"{REPOSITORY}/certificates?subject_eui={self.user_ids['IS']}", scenario="RPA-04",
                  headers={"X-API-Key": self.aro["repository_api_key"]})
        self.call("GET", f"{REPOSITORY}/certificates", scenario="RPA-05", run_key=True)

    def _check_list(self, der: bytes, issuers: list[x509.Certificate]) -> None:
        crl = x509.load_der_x509_crl(der)
        for issuer in issuers:
            public = issuer.public_key()
            if issuer.subject == crl.issuer and isinstance(public, ec.EllipticCurvePublicKey) \
                    and crl.is_signature_valid(public):
                return
        raise SelftestFailed(f"the list issued by {crl.issuer.rfc4514_string()} does not verify")

    def _ca_certificates(self) -> list[x509.Certificate]:
        listed = self._json(self.call("GET", "/api/v1/ca/certificates"))
        found = []
        for entry in listed.get("certificates", []):
            answer = self.call("GET", entry["href"])
            if answer.status_code == 200:
                found.append(x509.load_pem_x509_certificate(answer.content))
        return found

    def revocation_lists(self) -> None:
        key = {"X-API-Key": self.aro["repository_api_key"]}
        issuers = self._ca_certificates()
        for scenario, name in (("CRL-01", "crl"), ("CRL-02", "arl")):
            def published(name: str = name) -> bool:
                return self.call("GET", f"{REPOSITORY}/{name}", headers=key).status_code == 200
            self._wait(f"the {name.upper()} to be published", published)
            answer = self.call("GET", f"{REPOSITORY}/{name}", scenario=scenario, headers=key)
            if issuers:
                self._check_list(answer.content, issuers)  # as a Party's client checks it before relying on it

    def revocation(self) -> None:
        self.call("POST", f"{RA}/certificates/{self.rejected_serial}/rejection", scenario="REV-04",
                  headers=self._aro(), json={"reason": "the certificate does not match the CSR we sent"})
        requested = self._json(self.call("POST", f"{RA}/forms/certificate_revocation_request", scenario="REV-01",
                                         headers=self._aro(), json={"serial": self.serial, "reason": "key_compromise",
                                                                    "details": "SREPT model Party rehearsal"}), 201)
        number = requested["id"]
        self._json(self.call("POST", f"{RA}/submissions/{number}/verification", headers=self.operator,
                             json={"checks": {"requester_verified": True}}))
        self._json(self.call("POST", f"{RA}/submissions/{number}/approval", headers=self.operator, json={}))
        self.call("POST", f"{RA}/forms/certificate_revocation_request", scenario="REV-03", headers=self._aro(),
                  json={"serial": "ABCDEF0123456789ABCDEF", "reason": "key_compromise"})
        key = {"X-API-Key": self.aro["repository_api_key"]}
        wanted = int(self.serial, 16)

        def listed() -> bool:
            # undeclared: a CRL that does not list it yet still passes CRL-01, and is no failure of REV-02
            answer = self.call("GET", f"{REPOSITORY}/crl", headers=key)
            return answer.status_code == 200 and any(
                entry.serial_number == wanted for entry in x509.load_der_x509_crl(answer.content))
        self._wait(f"the CRL to list {self.serial} (published after the RA's debounce)", listed)
        self.say(f"  REV-02  the CRL lists {self.serial}")

    def portal(self) -> None:
        browser = requests.Session()
        browser.verify = self.http.verify
        form = self._csrf(self.call("GET", "/portal/login", session=browser))
        self.call("POST", "/portal/login", scenario="PTL-02", run_key=True, session=browser,
                  data={"token": "smki_0000000000000000_not-a-token", "csrf_token": form})
        form = self._csrf(self.call("GET", "/portal/login", session=browser))
        self.call("POST", "/portal/login", scenario="PTL-01", session=browser,
                  data={"token": self.aro["api_token"], "csrf_token": form})
        own = Eui64.parse(self.user_ids["GS"])
        form = self._csrf(self.call("GET", "/portal/csr", session=browser))
        page = self.call("POST", "/portal/csr", scenario="PTL-03", session=browser,
                         data={"csr": _pem(organisation_csr(_key(), "02", own)), "csrf_token": form})
        serial = _SERIAL.search(page.text)
        form = self._csrf(self.call("GET", "/portal/csr", session=browser))
        stranger = Eui64(b"\x90\xb3\xd5\x1f" + secrets.token_bytes(4))
        self.call("POST", "/portal/csr", scenario="PTL-04", session=browser,
                  data={"csr": _pem(organisation_csr(_key(), "02", stranger)), "csrf_token": form})
        if serial:
            self.call("GET", f"/portal/certificates/{serial.group(1)}.pem", scenario="PTL-05", session=browser)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as out:
            out.writestr("meter-1.csr", _pem(device_csr(_key(), self.devices[2], "digitalSignature")))
        form = self._csrf(self.call("GET", "/portal/device-csr-batches", session=browser))
        uploaded = self.call("POST", "/portal/device-csr-batches", scenario="PTL-06", session=browser,
                             data={"csrf_token": form},
                             files={"archive": ("model-upload.zip", archive.getvalue(), "application/zip")})
        location = uploaded.headers.get("Location", "")
        found = re.search(r"/portal/device-csr-batches/([0-9]+)", location)
        if not found:
            raise SelftestFailed(f"the portal upload was not accepted (HTTP {uploaded.status_code})")
        upload = found.group(1)
        self._wait(f"upload {upload} to complete", lambda: "model-upload-response.zip" in self.call(
            "GET", f"/portal/device-csr-batches/{upload}", session=browser).text)
        self.call("GET", f"/portal/device-csr-batches/{upload}/model-upload-response.zip", scenario="PTL-07",
                  session=browser)

    def extracts(self) -> None:
        for scenario in ("EXT-01", "EXT-02"):
            self._json(self.call("POST", f"{SREPT}/runs/{self.outcome.run_id}/attestations", headers=self.operator,
                                 json={"scenario": scenario, "note": "model Party self-test: the sandbox serves no "
                                       "SFTP, so the RA operator attests the extract step"}), 201)

    # --- the end -----------------------------------------------------------------------------------------

    def finish(self, record_pass: bool) -> None:
        run = self.outcome.run_id

        def settled() -> bool:
            progress = self._json(self.call("GET", f"{SREPT}/runs/{run}", headers=self.sro))
            self.outcome.scenarios = {s["id"]: s["state"] for s in progress["scenarios"]}
            return bool(progress["complete"])
        try:
            self._wait("every scenario to be recorded", settled)
        except SelftestFailed:
            return
        pack = self.call("GET", f"{SREPT}/runs/{run}/pack", headers=self.sro)
        if pack.status_code != 200:
            self.outcome.pack_problems.append(f"the pack could not be fetched: HTTP {pack.status_code}")
            return
        from smki.srept.evidence import verify_bytes

        self.outcome.pack_problems = verify_bytes(pack.content)
        if record_pass and not self.outcome.pack_problems:
            digest = pack.headers.get("X-SREPT-Manifest-SHA256", "")
            self._json(self.call("POST", f"{SREPT}/runs/{run}/pass", headers=self.operator,
                                 json={"pack_sha256": digest}))
            self.outcome.pass_recorded = True

    def play(self, record_pass: bool = False) -> Outcome:
        self.register()
        self.open_run()
        self.nominate_aro()
        for step in (self.organisation_csrs, self.batched_device_csrs, self.adhoc_device_csrs,
                     self.repository_service, self.repository_access, self.portal, self.revocation_lists,
                     self.revocation, self.extracts):
            self.say(f"{step.__name__.replace('_', ' ')}:")
            step()
        self.finish(record_pass)
        return self.outcome
