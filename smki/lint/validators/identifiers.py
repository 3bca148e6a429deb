"""Key identifiers: GBCS section 12 rules 4 and 5 (8 octets, RFC 5280 method 2, keyIdentifier only)."""

from __future__ import annotations

from collections.abc import Iterator

from cryptography.hazmat.primitives.asymmetric import ec

from smki.ca.identifiers import subject_key_identifier as method_2
from smki.lint.findings import Finding, finding
from smki.lint.model import CertificateView, LintContext

KEY_IDENTIFIER_OCTETS = 8


def subject_key_identifier(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    value = view.parsed("subjectKeyIdentifier")
    if value is None:
        return
    identifier = value.native
    if len(identifier) != KEY_IDENTIFIER_OCTETS:
        yield finding("LN:SKI01", f"subjectKeyIdentifier is {len(identifier)} octets, must be 8",
                      "subjectKeyIdentifier")
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), view.public_point)
    except ValueError:
        return  # not a P-256 point: KEY01/KEY02 say so
    expected = method_2(key)
    if identifier != expected:
        yield finding("LN:SKI02", f"subjectKeyIdentifier {identifier.hex()} is not method 2 of the key "
                      f"({expected.hex()})", "subjectKeyIdentifier")


def authority_key_identifier(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    value = view.parsed("authorityKeyIdentifier")
    if value is None:
        return
    if value["authority_cert_issuer"].native is not None or value["authority_cert_serial_number"].native is not None:
        yield finding("LN:AKI01", "authorityKeyIdentifier must hold [0] keyIdentifier only",
                      "authorityKeyIdentifier")
    identifier = value["key_identifier"].native
    if identifier is None or len(identifier) != KEY_IDENTIFIER_OCTETS:
        size = "absent" if identifier is None else f"{len(identifier)} octets"
        yield finding("LN:AKI02", f"authorityKeyIdentifier keyIdentifier is {size}, must be 8 octets",
                      "authorityKeyIdentifier")
