"""Builders for well-formed and deliberately malformed CSRs, for the CA acceptance tests.

Malformations cryptography refuses to produce (compressed points, NULL parameters, version 1, a
corrupted signature) are made by re-assembling the PKCS#10 structure with asn1crypto and re-signing the
CertificationRequestInfo with the key, so each bad CSR is wrong in exactly one way.
"""

from __future__ import annotations

from collections.abc import Callable

from asn1crypto import algos, core
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from smki.ca.builder import key_usage
from smki.core.asn1 import HARDWARE_MODULE_NAME_OID, hardware_module_name
from smki.core.eui64 import Eui64
from smki.csrgen import TEST_HW_TYPE, organisation_subject

SUPPLIER = Eui64.parse("90B3D51F30010000")
DEVICE = Eui64.parse("00DB123456789001")

_KEYS: dict[str, ec.EllipticCurvePrivateKey] = {}


def p256(name: str = "default") -> ec.EllipticCurvePrivateKey:
    """A P-256 key, made once per name per run (key generation is the slow part of these tests)."""
    if name not in _KEYS:
        _KEYS[name] = ec.generate_private_key(ec.SECP256R1())
    return _KEYS[name]


def build(key, subject: x509.Name, *, usages: list[str] | None = ("digitalSignature",),  # type: ignore[no-untyped-def]
          ku_critical: bool = True, san: list[x509.GeneralName] | None = None,
          algorithm: hashes.HashAlgorithm | str | None = "sha256") -> bytes:
    """A CSR built by cryptography's own builder, as DER."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if usages is not None:
        builder = builder.add_extension(key_usage(list(usages)), critical=ku_critical)
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=True)
    # algorithm None: EdDSA keys sign without a separate hash
    digest = hashes.SHA256() if algorithm == "sha256" else algorithm
    return builder.sign(key, digest).public_bytes(Encoding.DER)  # type: ignore[arg-type]


def organisation(key=None, ou: str = "02", usage: str = "digitalSignature",  # type: ignore[no-untyped-def]
                 trading_name: str | None = None, entity: Eui64 = SUPPLIER, **kwargs) -> bytes:
    return build(key or p256(), organisation_subject(ou, entity, trading_name), usages=[usage], **kwargs)


def hmn(serial: bytes = DEVICE.value, hw_type: str = TEST_HW_TYPE) -> x509.OtherName:
    return x509.OtherName(x509.ObjectIdentifier(HARDWARE_MODULE_NAME_OID), hardware_module_name(hw_type, serial))


def device(key=None, usage: str = "digitalSignature", names: list[x509.GeneralName] | None = None,  # type: ignore[no-untyped-def]
           subject: x509.Name | None = None) -> bytes:
    return build(key or p256(), subject or x509.Name([]), usages=[usage], san=names or [hmn()])


def name(*attributes: tuple[x509.ObjectIdentifier, str | bytes, _ASN1Type]) -> x509.Name:
    """A Name with one single-valued RDN per attribute."""
    return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(oid, value, kind)])
                      for oid, value, kind in attributes])


def ou(value: str) -> tuple[x509.ObjectIdentifier, str, _ASN1Type]:
    return (NameOID.ORGANIZATIONAL_UNIT_NAME, value, _ASN1Type.UTF8String)


def uid(octets: bytes = SUPPLIER.value) -> tuple[x509.ObjectIdentifier, bytes, _ASN1Type]:
    return (NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + octets, _ASN1Type.BitString)


def resign(der: bytes, key, *, info: Callable[[asn1_csr.CertificationRequestInfo], None] | None = None,  # type: ignore[no-untyped-def]
           signature_algorithm: algos.SignedDigestAlgorithm | None = None,
           signature: Callable[[bytes], bytes] | None = None) -> bytes:
    """Re-assemble a CSR: change its CertificationRequestInfo and/or signature AlgorithmIdentifier, then
    sign the new info with ``key`` (a private key object with ``sign``), optionally spoiling the signature."""
    request = asn1_csr.CertificationRequest.load(der)
    request_info = request["certification_request_info"]
    if info is not None:
        info(request_info)
    to_sign = request_info.dump()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
    else:
        value = key(to_sign)
    if signature is not None:
        value = signature(value)
    rebuilt = asn1_csr.CertificationRequest({
        "certification_request_info": asn1_csr.CertificationRequestInfo.load(to_sign),
        "signature_algorithm": signature_algorithm or request["signature_algorithm"],
        "signature": value,
    })
    return rebuilt.dump()


def with_compressed_point(key: ec.EllipticCurvePrivateKey) -> Callable[[asn1_csr.CertificationRequestInfo], None]:
    compressed = key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)

    def mutate(request_info: asn1_csr.CertificationRequestInfo) -> None:
        spki = request_info["subject_pk_info"]
        request_info["subject_pk_info"] = {"algorithm": spki["algorithm"], "public_key": compressed}
    return mutate


def with_version(version: int) -> Callable[[asn1_csr.CertificationRequestInfo], None]:
    def mutate(request_info: asn1_csr.CertificationRequestInfo) -> None:
        request_info["version"] = asn1_csr.Version(version)
    return mutate


def ecdsa_sha256(parameters: core.Asn1Value | None = None) -> algos.SignedDigestAlgorithm:
    value = {"algorithm": "sha256_ecdsa"}
    if parameters is not None:
        value["parameters"] = parameters
    return algos.SignedDigestAlgorithm(value)


def flip_last_bit(value: bytes) -> bytes:
    """Spoils an ECDSA-Sig-Value without breaking its DER: the last octet of s changes."""
    return value[:-1] + bytes([value[-1] ^ 0x01])


def pem(der: bytes, label: str = "CERTIFICATE REQUEST", width: int = 64, newline: str = "\n",
        trailing: bool = True) -> bytes:
    import base64

    body = base64.b64encode(der).decode()
    lines = [body[i:i + width] for i in range(0, len(body), width)] if width else [body]
    text = newline.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])
    return (text + (newline if trailing else "")).encode()


def with_extensions(change: Callable[[list], list]) -> Callable[[asn1_csr.CertificationRequestInfo], None]:
    """Rewrites the extensionRequest's list of extensions (asn1crypto ``Extension`` values)."""
    def mutate(request_info: asn1_csr.CertificationRequestInfo) -> None:
        extensions = list(request_info["attributes"][0]["values"][0])
        request_info["attributes"] = [{"type": "extension_request", "values": [change(extensions)]}]
    return mutate


def extension(oid: str, value_der: bytes, critical: bool = True):  # type: ignore[no-untyped-def]
    from asn1crypto import x509 as ax

    return ax.Extension({"extn_id": oid, "critical": critical, "extn_value": core.ParsableOctetString(value_der)})
