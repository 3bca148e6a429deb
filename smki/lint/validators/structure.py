"""Version, serial number, algorithms and key: GBCS section 12 rules 1 and 2, RFC 5758."""

from __future__ import annotations

from collections.abc import Iterator

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from smki.lint.findings import Finding, finding
from smki.lint.model import CertificateView, LintContext

ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
P256 = "1.2.840.10045.3.1.7"
DEFAULT_SERIAL_OCTETS = 16


def version(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    if view.tbs["version"].native != "v3":
        yield finding("LN:VER01", f"version is {view.tbs['version'].native}, must be v3", "version")


def serial_number(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    octets = bytes(view.tbs["serial_number"].contents)
    wanted = context.profile.serial_octets if context.profile else DEFAULT_SERIAL_OCTETS
    if octets[0] & 0x80 or not any(octets):
        yield finding("LN:SER02", f"serial {octets.hex()} is not a positive integer", "serialNumber")
    elif len(octets) != wanted:
        yield finding("LN:SER01", f"serial is {len(octets)} octets in DER, the profile wants {wanted} "
                      "(first octet 0x01..0x7F)", "serialNumber")


def _algorithm(view: CertificateView, where: str) -> Iterator[Finding]:
    identifier = view.tbs["signature"] if where == "signature" else view.certificate["signature_algorithm"]
    if identifier["algorithm"].dotted != ECDSA_WITH_SHA256:
        yield finding("LN:ALG01", f"{where} is {identifier['algorithm'].dotted}, must be ecdsa-with-SHA256", where)
    parameters = identifier["parameters"]
    if not isinstance(parameters, core.Void):
        yield finding("LN:ALG02", f"{where} AlgorithmIdentifier carries parameters ({parameters.dump().hex()}); "
                      "RFC 5758 and GBCS want them absent", where)


def signature_algorithm(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    yield from _algorithm(view, "signature")
    yield from _algorithm(view, "signatureAlgorithm")
    if view.tbs["signature"].dump() != view.certificate["signature_algorithm"].dump():
        yield finding("LN:ALG03", "tbsCertificate.signature and signatureAlgorithm are encoded differently",
                      "signatureAlgorithm")


def public_key(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    algorithm = view.tbs["subject_public_key_info"]["algorithm"]
    parameters = algorithm["parameters"]
    curve = parameters.chosen.dotted if algorithm["algorithm"].dotted == EC_PUBLIC_KEY and \
        parameters.name == "named" else None
    if curve != P256:
        yield finding("LN:KEY01", f"key algorithm {algorithm['algorithm'].dotted} with parameters "
                      f"{parameters.dump().hex()}; must be id-ecPublicKey on namedCurve P-256", "subjectPublicKeyInfo")
        return
    bits, point = view.public_key_bits, view.public_point
    if bits[0] != 0 or len(point) != 65 or point[0] != 0x04:
        yield finding("LN:KEY02", f"public key is {len(point)} octets starting 0x{point[:1].hex()}; must be an "
                      "uncompressed point (0x04, 65 octets)", "subjectPublicKeyInfo")
        return
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        yield finding("LN:KEY02", "public key is not a point on P-256", "subjectPublicKeyInfo")


def self_signature(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    """Only a self-signed certificate can be checked without its issuer; others need --chain."""
    if not view.self_issued:
        return
    try:
        certificate = x509.load_der_x509_certificate(view.der)
        certificate.verify_directly_issued_by(certificate)
    except InvalidSignature:
        yield finding("LN:SIG01", "the self-signature does not verify with the certificate's own key", "signature")
    except (ValueError, TypeError):
        return  # not loadable by cryptography (odd encoding or key): other findings say why
