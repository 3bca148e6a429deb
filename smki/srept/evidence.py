"""The evidence pack of a SREPT run: a zip with, per scenario, the recorded requests and answers of the
interactions that count, the certificates, CRLs, ARLs and extracts involved, the Test Completion Report (HTML
and PDF), and ``manifest.json``: the SHA-256 of every file, signed by the sandbox (``manifest.sig``, ECDSA P-256
with SHA-256, by the signer in ``signer.pem``, issued by the sandbox's IKI CA in ``iki-ca.pem``; see
:mod:`smki.srept.signing` for why that key).

:func:`verify_pack` checks a pack anywhere: the signer's certificate against the IKI CA (and against a trusted
copy of it, when given), the signature over the manifest, and every file against its digest, naming each file
that was changed, removed or added.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smki.core.errors import SmkiError
from smki.instance import Instance
from smki.ra.identity import Principal
from smki.srept.catalogue import scenarios_by_id
from smki.srept.models import SreptInteraction
from smki.srept.report import CompletionReport, ListCheck, to_html, to_pdf
from smki.srept.runs import Progress, SreptService
from smki.srept.signing import EvidenceSigner

MANIFEST, SIGNATURE, SIGNER, IKI_CA = "manifest.json", "manifest.sig", "signer.pem", "iki-ca.pem"
NOT_A_PACK = "FM:SRP08"
HIERARCHY = ("root_oca", "issuing_oca", "root_dca", "issuing_dca", "recovery")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
_XML_CERTIFICATE = re.compile(r"<(?:\w+:)?(?:Certificate|CertificateBody)>\s*([A-Za-z0-9+/=\s]{100,}?)\s*</")
EXTENSIONS = {"application/json": "json", "application/problem+json": "json", "application/xml": "xml",
              "text/xml": "xml", "text/html": "html", "application/pkix-crl": "crl",
              "application/pkix-cert": "cer", "application/x-pem-file": "pem", "application/zip": "zip",
              "text/plain": "txt"}


@dataclass(frozen=True)
class Pack:
    data: bytes
    manifest_sha256: str


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    files: int = 0
    signer: str | None = None

    @property
    def valid(self) -> bool:
        return not self.problems


def _extension(content_type: str | None) -> str:
    return EXTENSIONS.get((content_type or "").split(";")[0].strip().lower(), "bin")


def certificates_in(content_type: str | None, body: bytes) -> list[x509.Certificate]:
    """The certificates an answer carries: DER, PEM (also inside JSON strings), or base64 in Appendix M/O XML."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/pkix-cert":
        try:
            return [x509.load_der_x509_certificate(body)]
        except ValueError:
            return []
    text = body.decode("utf-8", "replace").replace("\\n", "\n").replace("&#43;", "+")
    found: dict[int, x509.Certificate] = {}
    for block in _PEM.findall(text):
        try:
            certificate = x509.load_pem_x509_certificate(block.encode())
        except ValueError:
            continue
        found.setdefault(certificate.serial_number, certificate)
    for encoded in _XML_CERTIFICATE.findall(text):
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode("".join(encoded.split())))
        except ValueError:
            continue
        found.setdefault(certificate.serial_number, certificate)
    return list(found.values())


def check_list(instance: Instance, path: str, der: bytes) -> ListCheck | None:
    """A CRL or ARL's signature checked against the certificate of the sandbox CA that issued it."""
    try:
        crl = x509.load_der_x509_crl(der)
    except ValueError:
        return None
    number = None
    with contextlib.suppress(x509.ExtensionNotFound):
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    valid = False
    for name in HIERARCHY:
        try:
            issuer = instance.hierarchy.certificate(name)
        except (OSError, KeyError, ValueError):
            continue
        if issuer.subject == crl.issuer:
            public = issuer.public_key()
            valid = isinstance(public, ec.EllipticCurvePublicKey) and crl.is_signature_valid(public)
            if valid:
                break
    return ListCheck(path, crl.issuer.rfc4514_string(), number, len(list(crl)), valid)


def _summary(row: SreptInteraction) -> dict[str, Any]:
    return {"id": row.id, "at": row.at.isoformat(), "method": row.method, "path": row.path, "query": row.query,
            "credential": row.credential_kind, "holder": row.credential_holder, "person_id": row.person_id,
            "declared_scenario": row.declared_scenario, "http_status": row.http_status,
            "service_status": row.service_status, "error_code": row.error_code,
            "audit_reference": row.audit_reference, "elapsed_ms": row.elapsed_ms, "note": row.note,
            "request": {"content_type": row.request_type, "truncated": row.request_truncated,
                        "sha256": hashlib.sha256(row.request_body).hexdigest()},
            "response": {"content_type": row.response_type, "truncated": row.response_truncated,
                         "sha256": hashlib.sha256(row.response_body).hexdigest()}}


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, default=str).encode()


def _progress_json(progress: Progress) -> dict[str, Any]:
    run = progress.run
    return {"run": {"id": run.id, "organisation_id": run.organisation_id, "party": progress.party,
                    "status": run.status, "opened_by": run.opened_by, "opened_at": run.opened_at,
                    "closed_at": run.closed_at, "catalogue_sha256": run.catalogue_sha256},
            "complete": progress.complete,
            "scenarios": [{"id": s.id, "title": s.title, "kind": s.kind, "confidence": s.confidence,
                           "state": s.state, "passing": list(s.passing), "failing": list(s.failing)}
                          for s in progress.scenarios]}


def build_pack(instance: Instance, service: SreptService, principal: Principal | None, run_id: int) -> Pack:
    """The run's evidence pack (``principal`` None: the sandbox itself, as ``smki srept pack``)."""
    progress = service.progress(principal, run_id)
    rows = {row.id: row for row in service.interactions(principal, run_id, bodies=True)}
    known = scenarios_by_id(service.catalogue)
    files: dict[str, bytes] = {}
    checks: list[ListCheck] = []
    for scenario in progress.scenarios:
        wanted = set(known[scenario.id][1].evidence) if scenario.id in known else {"request", "response"}
        folder = f"scenarios/{scenario.id}"
        for interaction_id in (*scenario.passing, *scenario.failing):
            row = rows.get(interaction_id)
            if row is None:
                continue
            stem = f"{folder}/{row.id:06d}"
            files[f"{stem}-interaction.json"] = _json(_summary(row))
            if row.request_body:
                files[f"{stem}-request.{_extension(row.request_type)}"] = row.request_body
            if row.response_body:
                files[f"{stem}-response.{_extension(row.response_type)}"] = row.response_body
            if wanted & {"certificate", "batch_result"}:
                for certificate in certificates_in(row.response_type, row.response_body):
                    files[f"{folder}/certificates/{certificate.serial_number:X}.pem"] = certificate.public_bytes(
                        serialization.Encoding.PEM)
            if wanted & {"crl", "arl"} and _extension(row.response_type) == "crl":
                path = f"{stem}-{'arl' if '/arl' in row.path else 'crl'}.crl"
                files[path] = row.response_body
                check = check_list(instance, path, row.response_body)
                if check is not None:
                    checks.append(check)
            if row.method == "ATTEST" and row.response_body:
                name = (row.note or "").rsplit("[", 1)[-1].rstrip("]") if "[" in (row.note or "") else "evidence"
                files[f"{stem}-{'extract' if 'extract' in wanted else 'evidence'}-{name}"] = row.response_body
    times = {row.id: row.at for row in rows.values()}
    report = CompletionReport(progress, dt.datetime.now(dt.UTC), times, tuple(checks))
    files["report/completion-report.html"] = to_html(report)
    files["report/completion-report.pdf"] = to_pdf(report)
    files["run.json"] = _json(_progress_json(progress))
    files["interactions.json"] = _json([_summary(row) for row in rows.values()])
    signer = EvidenceSigner(instance)
    files[SIGNER] = signer.certificate().public_bytes(serialization.Encoding.PEM)
    files[IKI_CA] = signer.iki_ca.public_bytes(serialization.Encoding.PEM)
    manifest = _json({"run": run_id, "party": progress.party, "made_at": report.made_at.isoformat(),
                      "algorithm": "SHA-256", "signature": "ECDSA P-256 with SHA-256 over this file (manifest.sig)",
                      "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())}})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, manifest)
        archive.writestr(SIGNATURE, signer.sign(manifest))
        for path, data in sorted(files.items()):
            archive.writestr(path, data)
    return Pack(out.getvalue(), hashlib.sha256(manifest).hexdigest())


def verify_bytes(data: bytes, trusted_ca: x509.Certificate | None = None) -> list[str]:
    """The problems of a pack held in memory (none: it is as the sandbox made it)."""
    try:
        return verify_pack(io.BytesIO(data), trusted_ca).problems
    except SmkiError as error:
        return [error.message]


def verify_pack(path: Path | io.BytesIO, trusted_ca: x509.Certificate | None = None) -> Verification:
    """Whether the pack is as the sandbox made it; every problem names the file it is in."""
    result = Verification()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SmkiError(NOT_A_PACK, f"{path} is not an evidence pack (a zip file): {exc}") from exc
    with archive:
        names = set(archive.namelist())
        for required in (MANIFEST, SIGNATURE, SIGNER, IKI_CA):
            if required not in names:
                result.problems.append(f"{required}: missing")
        if result.problems:
            return result
        manifest_bytes = archive.read(MANIFEST)
        try:
            signer = x509.load_pem_x509_certificate(archive.read(SIGNER))
            authority = x509.load_pem_x509_certificate(archive.read(IKI_CA))
        except ValueError:
            result.problems.append(f"{SIGNER} or {IKI_CA}: not a PEM certificate")
            return result
        result.signer = signer.subject.rfc4514_string()
        if trusted_ca is not None and authority.public_bytes(serialization.Encoding.DER) != trusted_ca.public_bytes(
                serialization.Encoding.DER):
            result.problems.append(f"{IKI_CA}: not the IKI CA certificate given to trust")
        try:
            signer.verify_directly_issued_by(trusted_ca or authority)
        except (ValueError, TypeError, InvalidSignature):
            result.problems.append(f"{SIGNER}: not issued by the sandbox's IKI CA")
        public = signer.public_key()
        try:
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise InvalidSignature
            public.verify(archive.read(SIGNATURE), manifest_bytes, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            result.problems.append(f"{MANIFEST}: its signature ({SIGNATURE}) does not verify with {SIGNER}")
        try:
            listed: dict[str, str] = json.loads(manifest_bytes)["files"]
        except (ValueError, KeyError, TypeError):
            result.problems.append(f"{MANIFEST}: not a manifest of files and digests")
            return result
        for name, digest in sorted(listed.items()):
            if name not in names:
                result.problems.append(f"{name}: listed in the manifest but missing from the pack")
            elif hashlib.sha256(archive.read(name)).hexdigest() != digest:
                result.problems.append(f"{name}: changed (its SHA-256 is not the manifest's)")
        for name in sorted(names - set(listed) - {MANIFEST, SIGNATURE}):
            result.problems.append(f"{name}: not in the manifest (added to the pack)")
        result.files = len(listed)
    return result
