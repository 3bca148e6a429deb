"""A simulated device as the command processor sees it: its cells, counters, keys and faults, as plain values.

Pure data, no database: :mod:`smki.estate.processing` loads these from the estate's tables and saves them back;
:mod:`smki.estate.processor` turns one into the next.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from smki.gbcs import CellUsage, KeyUsage, RemotePartyRole, TrustAnchorCell

# The estate stores a cell's key usage by its X.509 name; the codec by its bit.
KEY_USAGE_BY_NAME = {"digitalSignature": KeyUsage.DIGITAL_SIGNATURE, "keyAgreement": KeyUsage.KEY_AGREEMENT,
                     "keyCertSign": KeyUsage.KEY_CERT_SIGN}
NAME_BY_KEY_USAGE = {usage: name for name, usage in KEY_USAGE_BY_NAME.items()}
NO_SUBJECT = bytes(8)   # the root's subject unique ID in a response, as the RTDS devices write it
WRAPPED_APEX_CONTINGENCY_KEY = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.20")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Cell:
    """One trust-anchor cell: its key (role, key usage, cell usage), the certificate it holds (DER, or None when
    empty) and its state (installed, replaced, empty, stale, tampered)."""

    role: int
    key_usage: str
    cell_usage: int
    anchor: bytes | None
    state: str

    @property
    def identifier(self) -> TrustAnchorCell:
        return TrustAnchorCell(RemotePartyRole(self.role), KEY_USAGE_BY_NAME[self.key_usage],
                               CellUsage(self.cell_usage))

    @property
    def trustworthy(self) -> bool:
        """A stale cell holds a superseded key and a tampered one no longer the key that was loaded: neither
        verifies what the current key holder signs."""
        return self.anchor is not None and self.state not in ("stale", "tampered")


@dataclass(frozen=True)
class DeviceState:
    device_id: bytes                      # EUI-64, 8 octets
    ds_private_key: bytes                 # raw P-256 scalar (simulated device: test material)
    ka_private_key: bytes | None
    cells: tuple[Cell, ...]
    counters: Mapping[int, int]           # anti-replay counter per Remote Party Role code
    faults: int = 0                       # smki.estate.faults.Fault flags
    # Future-dated commands accepted and not yet run, as received (the wire octets).
    pending: tuple[bytes, ...] = ()
    alerts_sent: int = 0                  # the device's own counter for the alerts it raises

    def cell(self, identifier: TrustAnchorCell) -> Cell | None:
        return cell_index(self.cells).get(cell_key(identifier))

    def ds_key(self) -> ec.EllipticCurvePrivateKey:
        return _private_key(self.ds_private_key)

    def ka_key(self) -> ec.EllipticCurvePrivateKey | None:
        return None if self.ka_private_key is None else _private_key(self.ka_private_key)


CellKey = tuple[int, str | None, int]   # (role, key usage name, cell usage), as a device's cells are keyed


def cell_key(identifier: TrustAnchorCell) -> CellKey:
    return int(identifier.role), NAME_BY_KEY_USAGE.get(identifier.key_usage), int(identifier.cell_usage)


class IdentityMemo(Generic[V]):
    """Results worked out from immutable values, kept by the values' identity: the devices of a delivery share
    their cells (one tuple per distinct stored value) and their command's decoded payload (the codec keeps one
    per payload), so what follows from those alone is worked out once per delivery, not once per device. Each
    entry holds its values: two objects alive at once never share an id, so an entry found by the values' ids
    is theirs. The entries are bounded. Only for values nobody changes (tuples of frozen values, and the like)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: dict[tuple[Hashable, ...], tuple[tuple[object, ...], V]] = {}

    def get(self, values: tuple[object, ...], extra: Hashable, make: Callable[[], V]) -> V:
        key = (*map(id, values), extra)
        entry = self._entries.get(key)
        if entry is not None:
            return entry[1]
        result = make()
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (values, result)
        return result


_INDEXES: IdentityMemo[dict[CellKey, Cell]] = IdentityMemo()


def cell_index(cells: tuple[Cell, ...]) -> dict[CellKey, Cell]:
    """The cells by key (the first of any two with one key); not to be changed (shared by the devices that hold
    the same cells)."""
    def build() -> dict[CellKey, Cell]:
        index: dict[CellKey, Cell] = {}
        for c in cells:
            index.setdefault((c.role, c.key_usage, c.cell_usage), c)
        return index
    return _INDEXES.get((cells,), None, build) if isinstance(cells, tuple) else build()


@lru_cache(maxsize=4096)
def _private_key(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())


@dataclass(frozen=True, eq=False)   # compared by identity: read_certificate hands out one per DER
class Anchor:
    """A certificate read once: what the processor needs of it. Built by :func:`read_certificate`."""

    der: bytes
    certificate: x509.Certificate
    subject_id: bytes            # the x500UniqueIdentifier (Entity ID), or 8 zero octets
    key_identifier: bytes        # the subjectKeyIdentifier, or empty
    role_ou: str | None
    key_usages: frozenset[str]
    is_ca: bool
    not_before: dt.datetime
    not_after: dt.datetime

    def public_key(self) -> ec.EllipticCurvePublicKey | None:
        return self._public_key

    @cached_property
    def _public_key(self) -> ec.EllipticCurvePublicKey | None:
        # Asked for several times per command (each check, each outcome); read once per certificate.
        try:
            key = self.certificate.public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return None
        return key if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1) else None

    def extension(self, oid: x509.ObjectIdentifier) -> bytes | None:
        try:
            value = self.certificate.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            return None
        return value.value if isinstance(value, x509.UnrecognizedExtension) else None


# What cryptography raises for a certificate it cannot read.
_UNREADABLE = (ValueError, TypeError, AssertionError, UnsupportedAlgorithm, x509.InvalidVersion,
               x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


@lru_cache(maxsize=1024)
def read_certificate(der: bytes) -> Anchor | None:
    """The certificate in ``der``, or None when it is not one a device can read. Cached: a drill sends the same
    few certificates to every device."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        # cryptography parses lazily: touch every part the processor reads, so damage fails here, once.
        extensions = certificate.extensions
        if not der.endswith(b"\x00" + certificate.signature):
            # DER leaves no unused bits in the signature BIT STRING; cryptography would verify it regardless,
            # which would let a device hold octets other than the ones signed.
            return None
        _ = (certificate.issuer, certificate.subject, certificate.serial_number, certificate.not_valid_before_utc,
             certificate.not_valid_after_utc, certificate.signature_hash_algorithm, certificate.signature,
             certificate.tbs_certificate_bytes)
        subject_id = NO_SUBJECT
        unique = certificate.subject.get_attributes_for_oid(NameOID.X500_UNIQUE_IDENTIFIER)
        if unique and isinstance(unique[0].value, bytes):
            # A BIT STRING's contents: the unused-bits octet (0), then the Entity ID.
            value = unique[0].value
            subject_id = value[1:] if len(value) == len(NO_SUBJECT) + 1 and value[0] == 0 else value
        ous = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        role_ou = str(ous[0].value) if ous else None
        usages: set[str] = set()
        try:
            key_usage = extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
            assert isinstance(key_usage, x509.KeyUsage)
            for name, attribute in (("digitalSignature", "digital_signature"), ("keyAgreement", "key_agreement"),
                                    ("keyCertSign", "key_cert_sign")):
                if getattr(key_usage, attribute):
                    usages.add(name)
        except x509.ExtensionNotFound:
            pass
        try:
            ski = extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
            assert isinstance(ski, x509.SubjectKeyIdentifier)
            key_identifier = ski.digest
        except x509.ExtensionNotFound:
            key_identifier = b""
        try:
            basic = extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
            assert isinstance(basic, x509.BasicConstraints)
            is_ca = basic.ca
        except x509.ExtensionNotFound:
            is_ca = False
        return Anchor(der, certificate, subject_id, key_identifier, role_ou, frozenset(usages), is_ca,
                      certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    except _UNREADABLE:
        return None
