"""Certification path validation with OpenSSL (through pyOpenSSL), plus the policy-OID check it cannot do.

The last certificate of ``--chain`` is the trust anchor; the others are untrusted intermediates. When
the anchor is not self-issued (the DCC's public chains stop at the Issuing OCA) OpenSSL's partial-chain
flag lets it be the anchor. Flags: X509_STRICT and POLICY_CHECK. OpenSSL's EXPLICIT_POLICY needs a
user-initial-policy-set, which pyOpenSSL has no call to set (``X509_VERIFY_PARAM_add0_policy`` is not
bound), and with an empty set OpenSSL fails every path with "no explicit policy". So the environment's
policy OID is checked here on the verified path instead (PTH06).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from asn1crypto import x509 as asn1_x509
from OpenSSL import crypto

from smki.lint.findings import Finding, finding
from smki.lint.model import CertificateView
from smki.lint.source import LoadedCertificate

ANY_POLICY = "2.5.29.32.0"

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) by the finding that explains them to an SMKI user
OPENSSL_ERRORS = {
    "LN:PTH01": {2, 18, 19, 20, 21, 29, 30, 31},   # issuer / anchor not found, or AKI/SKI or name mismatch
    "LN:PTH02": {4, 6, 7, 76, 77, 78},             # signature fails or cannot be checked
    "LN:PTH03": {9, 10, 13, 14},                   # not valid at the validation time
    "LN:PTH04": {42, 43},                          # certificate policy processing
    "LN:PTH05": {24, 25, 32, 37, 79, 80},          # issuer not allowed to issue: cA, pathLen, keyCertSign
}


def _code_for(error: int) -> str:
    return next((code for code, errors in OPENSSL_ERRORS.items() if error in errors), "LN:PTH07")


def _openssl(certificate: LoadedCertificate) -> crypto.X509:
    return crypto.load_certificate(crypto.FILETYPE_ASN1, certificate.der)


def _view(certificate: crypto.X509) -> CertificateView:
    der = crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate)
    return CertificateView(asn1_x509.Certificate.load(der), der)


def _policy_findings(path: Sequence[crypto.X509], policy_oid: str) -> list[Finding]:
    """Every certificate on the path that is not a self-issued root must assert the OID (or anyPolicy)."""
    for depth, certificate in enumerate(path):
        view = _view(certificate)
        if view.self_issued:
            continue
        value = view.parsed("certificatePolicies")
        asserted = {p["policy_identifier"].dotted for p in value} if value is not None else set()
        if policy_oid not in asserted and ANY_POLICY not in asserted:
            subject = view.tbs["subject"].human_friendly or "(empty subject)"
            return [finding("LN:PTH06", f"certificate at depth {depth} ({subject}) does not assert the "
                            f"environment's policy {policy_oid}", "certificatePolicies")]
    return []


def validate_path(target: LoadedCertificate, chain: Sequence[LoadedCertificate], *, at: dt.datetime | None,
                  policy_oid: str | None) -> list[Finding]:
    anchor, intermediates = chain[-1], chain[:-1]
    store = crypto.X509Store()
    store.add_cert(_openssl(anchor))
    flags = crypto.X509StoreFlags.X509_STRICT | crypto.X509StoreFlags.POLICY_CHECK
    if not CertificateView(anchor.certificate, anchor.der).self_issued:
        flags |= crypto.X509StoreFlags.PARTIAL_CHAIN
    store.set_flags(flags)
    if at is not None:
        store.set_time(at)
    context = crypto.X509StoreContext(store, _openssl(target), [_openssl(c) for c in intermediates])
    try:
        path = context.get_verified_chain()
    except crypto.X509StoreContextError as exc:
        error, depth, message = exc.errors[0], exc.errors[1], exc.errors[2]
        when = f" at {at.isoformat()}" if at is not None else " now"
        return [finding(_code_for(int(error)), f"OpenSSL: {message} (error {error}, depth {depth}{when})",
                        "path")]
    return _policy_findings(path, policy_oid) if policy_oid else []
