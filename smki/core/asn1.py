"""ASN.1 structures cryptography cannot express, built with asn1crypto."""

from __future__ import annotations

from functools import lru_cache

from asn1crypto import core, parser

# RFC 4108 id-on-hardwareModuleName, and RFC 5934 id-pe-wrappedApexContinKey
HARDWARE_MODULE_NAME_OID = "1.3.6.1.5.5.7.8.4"
WRAPPED_APEX_CONTINGENCY_KEY_OID = "1.3.6.1.5.5.7.1.20"


class HardwareModuleName(core.Sequence):
    _fields = [("hw_type", core.ObjectIdentifier), ("hw_serial_num", core.OctetString)]


class WrapAlgorithm(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class WrappedApexContingencyKey(core.Sequence):
    _fields = [("wrap_algorithm", WrapAlgorithm), ("wrapped_contin_pub_key", core.OctetString)]


def hardware_module_name(hw_type: str, serial: bytes) -> bytes:
    return HardwareModuleName({"hw_type": hw_type, "hw_serial_num": serial}).dump()


def parse_hardware_module_name(der: bytes) -> tuple[str, bytes]:
    """(hwType dotted OID, hwSerialNum). Raises ValueError when the DER is not a HardwareModuleName.

    Walks the TLVs with asn1crypto's parser rather than loading the Sequence class: this runs once per
    Device CSR, and the structure is two primitives in a SEQUENCE.
    """
    class_, _method, tag, _header, contents, _trailer = parser.parse(der, strict=True)
    if class_ != 0 or tag != 16:
        raise ValueError("a HardwareModuleName is a SEQUENCE")
    oid_length = parser.peek(contents)
    oid_tlv, serial_tlv = contents[:oid_length], contents[oid_length:]
    serial_class, _m, serial_tag, _h, serial, _t = parser.parse(serial_tlv, strict=True)
    if serial_class != 0 or serial_tag != 4:
        raise ValueError("hwSerialNum must be an OCTET STRING")
    return _dotted(oid_tlv), serial


@lru_cache(maxsize=32)
def _dotted(oid_tlv: bytes) -> str:
    """Dotted text of an encoded OID; cached, because every Device CSR of an environment has the same hwType."""
    return core.ObjectIdentifier.load(oid_tlv, strict=True).dotted


def wrapped_apex_contingency_key(wrap_algorithm: str, wrapped: bytes) -> bytes:
    # No parameters on the AES key-wrap AlgorithmIdentifier: RFC 3565 / RFC 5649 say they are absent.
    return WrappedApexContingencyKey({"wrap_algorithm": {"algorithm": wrap_algorithm},
                                      "wrapped_contin_pub_key": wrapped}).dump()


def parse_wrapped_apex_contingency_key(der: bytes) -> tuple[str, bytes]:
    value = WrappedApexContingencyKey.load(der, strict=True)
    return value["wrap_algorithm"]["algorithm"].dotted, value["wrapped_contin_pub_key"].native
