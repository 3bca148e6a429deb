"""One certificate builder, driven by a profile. Constant parts are prepared once per (profile, issuer)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from smki.ca.identifiers import new_serial, subject_key_identifier
from smki.ca.profile import CertificateProfile, ExtensionSpec
from smki.core.asn1 import HARDWARE_MODULE_NAME_OID, WRAPPED_APEX_CONTINGENCY_KEY_OID, hardware_module_name
from smki.core.errors import ConfigurationError, IssuanceFailed
from smki.core.eui64 import Eui64

ATTRIBUTE_OIDS = {
    "commonName": NameOID.COMMON_NAME,
    "organizationalUnitName": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "x500UniqueIdentifier": NameOID.X500_UNIQUE_IDENTIFIER,
}
STRING_TYPES = {
    "UTF8String": _ASN1Type.UTF8String,
    "PrintableString": _ASN1Type.PrintableString,
    "BitString": _ASN1Type.BitString,
}
KEY_USAGE_FLAGS = ("digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
                   "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly")
UTC_TIME_LIMIT = dt.datetime(2050, 1, 1, tzinfo=dt.UTC)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class CertificateRequest:
    """What the RA has approved. Which fields matter depends on the profile's ``from:`` sources."""

    profile: str
    public_key: ec.EllipticCurvePublicKey
    key_usage: str | None = None                 # digitalSignature or keyAgreement
    remote_party_role: str | None = None         # OU: two upper-case hex digits
    entity_identifier: Eui64 | None = None       # Organisation subject EUI-64
    trading_name: str | None = None              # optional Organisation CN
    device_id: Eui64 | None = None               # Device Certificate hwSerialNum
    ca_name: str | None = None                   # CA certificates' CN
    wrapped_contingency_key: bytes | None = None  # Root OCA only: the wrapped SPKI


def key_usage(flags: list[str] | tuple[str, ...]) -> x509.KeyUsage:
    unknown = set(flags) - set(KEY_USAGE_FLAGS)
    if unknown:
        raise ConfigurationError("CA:CFG4", f"unknown keyUsage flags {sorted(unknown)}")
    return x509.KeyUsage(
        digital_signature="digitalSignature" in flags, content_commitment="contentCommitment" in flags,
        key_encipherment="keyEncipherment" in flags, data_encipherment="dataEncipherment" in flags,
        key_agreement="keyAgreement" in flags, key_cert_sign="keyCertSign" in flags,
        crl_sign="cRLSign" in flags, encipher_only=False, decipher_only=False,
    )


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """As ``CertificateBuilder``'s setters keep a time: naive, in UTC."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def _start_of_day(now: dt.datetime) -> dt.datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _add_years(moment: dt.datetime, years: int) -> dt.datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February in a year that has none
        return moment.replace(year=moment.year + years, day=28)


class ProfileBuilder:
    """Builds and signs certificates of one profile under one issuer."""

    def __init__(self, profile: CertificateProfile, *, policy_oid: x509.ObjectIdentifier,
                 hardware_module_type: str, issuer_name: x509.Name | None,
                 issuer_key_id: bytes | None, signer: ec.EllipticCurvePrivateKey | None) -> None:
        self.profile = profile
        self.hardware_module_type = hardware_module_type
        self.issuer_name = issuer_name      # None for a self-signed profile: the subject is the issuer
        self.issuer_key_id = issuer_key_id
        self.signer = signer
        # Prepared once: these never vary between certificates of a profile under one issuer.
        self._policies = x509.CertificatePolicies([x509.PolicyInformation(policy_oid, None)])
        self._aki = (x509.AuthorityKeyIdentifier(issuer_key_id, None, None)
                     if issuer_key_id is not None else None)
        self._fixed_ku = {u: key_usage([u]) for u in ("digitalSignature", "keyAgreement")}
        # HardwareModuleName has a fixed length (the Device ID is always 8 octets), so asn1crypto encodes
        # it once and each certificate splices its Device ID into the last 8 octets.
        self._hw_prefix = hardware_module_name(hardware_module_type, bytes(8))[:-8]
        self._hw_oid = x509.ObjectIdentifier(HARDWARE_MODULE_NAME_OID)
        not_after = profile.validity.not_after
        self._fixed_not_after = (dt.datetime.strptime(not_after, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.UTC)
                                 if not_after else None)
        self._prepared: dict[tuple[str, int], x509.Extension[x509.ExtensionType]] = {}
        self._prepared_ids = {id(v) for v in (self._policies, self._aki, *self._fixed_ku.values()) if v is not None}
        self._naive: tuple[tuple[dt.datetime, dt.datetime], tuple[dt.datetime, dt.datetime]] = (
            (_EPOCH, _EPOCH), (_EPOCH, _EPOCH))
        self._extension_plan: list[tuple[ExtensionSpec, x509.Extension[x509.ExtensionType] | None]] | None = None
        self._validity_of_day: tuple[dt.date | None, tuple[dt.datetime, dt.datetime]] = (None, (_EPOCH, _EPOCH))
        kinds = [spec.type for spec in profile.extensions]
        repeated = sorted({kind for kind in kinds if kinds.count(kind) > 1})
        if repeated:  # the builder is given the extensions at once, so it does not check this itself
            raise ConfigurationError("CA:CFG7", f"profile {profile.name} names {', '.join(repeated)} more than once; "
                                     "a certificate carries each extension once (RFC 5280 4.2)")

    def _wrapped(self, spec: ExtensionSpec, value: x509.ExtensionType) -> x509.Extension[x509.ExtensionType]:
        """The extension as the builder takes it; made once for the values prepared once (the same object)."""
        if id(value) not in self._prepared_ids:
            return x509.Extension(value.oid, spec.critical, value)
        prepared = self._prepared.get((spec.type, id(value)))
        if prepared is None:
            prepared = self._prepared[(spec.type, id(value))] = x509.Extension(value.oid, spec.critical, value)
        return prepared

    _CONSTANT_KINDS = ("authorityKeyIdentifier", "certificatePolicies", "basicConstraints")

    def _plan(self) -> list[tuple[ExtensionSpec, x509.Extension[x509.ExtensionType] | None]]:
        """The profile's extensions in order, each with its Extension when it is the same in every certificate
        of the profile (made once, on first use) or None when it is made per certificate."""
        if self._extension_plan is None:
            plan: list[tuple[ExtensionSpec, x509.Extension[x509.ExtensionType] | None]] = []
            for spec in self.profile.extensions:
                constant = spec.type in self._CONSTANT_KINDS or (
                    spec.type == "keyUsage" and spec.options.get("from") != "request")
                if not constant:
                    plan.append((spec, None))
                    continue
                value = self._constant(spec)
                if value is not None:  # an absent constant (no AKI on a self-signed profile) is left out
                    plan.append((spec, x509.Extension(value.oid, spec.critical, value)))
            self._extension_plan = plan
        return self._extension_plan

    def validity(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        v = self.profile.validity
        if v.not_before == "start_of_day" and self._validity_of_day[0] == now.date():
            return self._validity_of_day[1]  # every certificate of a day has the same validity
        validity = self._validity(now)
        if v.not_before == "start_of_day":
            self._validity_of_day = (now.date(), validity)
        return validity

    def _validity(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        v = self.profile.validity
        not_before = _start_of_day(now) if v.not_before == "start_of_day" else now.replace(microsecond=0)
        if self._fixed_not_after is not None:
            not_after = self._fixed_not_after
        elif v.years is not None:
            not_after = _add_years(not_before, v.years) - dt.timedelta(seconds=v.minus_seconds)
        else:
            raise ConfigurationError("CA:CFG5", f"profile {self.profile.name} gives no notAfter")
        if not_after <= not_before:
            raise ConfigurationError("CA:CFG5", f"profile {self.profile.name} gives a notAfter "
                                     f"({not_after:%Y-%m-%d}) not after its notBefore ({not_before:%Y-%m-%d})")
        if v.time_encoding == "UTCTime" and not_after >= UTC_TIME_LIMIT:
            raise ConfigurationError("CA:CFG6", f"profile {self.profile.name} demands UTCTime, but notAfter "
                                     f"{not_after:%Y-%m-%d} is past 2049 and needs GeneralizedTime")
        return not_before, not_after

    def subject(self, request: CertificateRequest) -> x509.Name:
        rdns = []
        for attr in self.profile.subject:
            value: Any = attr.value if attr.value is not None else self._source(request, attr.source)
            if value is None:
                if attr.optional:
                    continue
                raise IssuanceFailed("CA:E201", f"the {self.profile.title} needs {attr.source} "
                                     "for its subject, and the request has none")
            string_type = STRING_TYPES[attr.string_type]
            if string_type is _ASN1Type.BitString:
                # cryptography holds a BIT STRING as its content octets: 0 unused bits, then the EUI-64
                value = b"\x00" + value.value
            try:
                attribute = x509.NameAttribute(ATTRIBUTE_OIDS[attr.attribute], value, string_type)
            except (ValueError, TypeError) as exc:  # e.g. a CN past 64 octets of UTF-8
                raise IssuanceFailed("CA:E210", f"the {self.profile.title} cannot carry this {attr.attribute} "
                                     f"in its subject ({exc})") from exc
            rdns.append(x509.RelativeDistinguishedName([attribute]))
        return x509.Name(rdns)

    @staticmethod
    def _source(request: CertificateRequest, source: str | None) -> Any:
        return getattr(request, source) if source else None

    def _constant(self, spec: ExtensionSpec) -> x509.ExtensionType | None:
        """An extension that is the same in every certificate of the profile (see ``_CONSTANT_KINDS``)."""
        kind = spec.type
        if kind == "keyUsage":
            return key_usage(spec.options["usages"])
        if kind == "authorityKeyIdentifier":
            return self._aki
        if kind == "certificatePolicies":
            return self._policies
        return x509.BasicConstraints(ca=bool(spec.options.get("ca")), path_length=spec.options.get("path_length"))

    def _extension(self, spec: ExtensionSpec, request: CertificateRequest,
                   ski: bytes) -> x509.ExtensionType | None:
        kind = spec.type
        if kind == "keyUsage" and spec.options.get("from") == "request":
            if request.key_usage not in self._fixed_ku:
                raise IssuanceFailed("CA:E202", "exactly one of digitalSignature or keyAgreement "
                                     f"is needed, not {request.key_usage!r}")
            return self._fixed_ku[request.key_usage]
        if kind in self._CONSTANT_KINDS or kind == "keyUsage":
            return self._constant(spec)
        if kind == "subjectKeyIdentifier":
            return x509.SubjectKeyIdentifier(ski)
        if kind == "subjectAltName":
            if request.device_id is None:
                raise IssuanceFailed("CA:E203", "a Device Certificate needs a Device ID")
            return x509.SubjectAlternativeName(
                [x509.OtherName(self._hw_oid, self._hw_prefix + request.device_id.value)])
        if kind == "wrappedApexContingencyKey":
            if request.wrapped_contingency_key is None:
                raise IssuanceFailed("CA:E204", "the Root OCA needs the wrapped Contingency key")
            return x509.UnrecognizedExtension(x509.ObjectIdentifier(WRAPPED_APEX_CONTINGENCY_KEY_OID),
                                              request.wrapped_contingency_key)
        raise ConfigurationError("CA:CFG7", f"profile {self.profile.name} names unknown extension {kind}")

    def build(self, request: CertificateRequest, now: dt.datetime, serial: int | None = None,
              signer: ec.EllipticCurvePrivateKey | None = None) -> x509.Certificate:
        subject = self.subject(request)
        not_before, not_after = validity = self.validity(now)
        if self._naive[0] != validity:  # the same validity for every certificate of a day: converted once
            self._naive = (validity, (_naive_utc(not_before), _naive_utc(not_after)))
        naive = self._naive[1]
        ski = subject_key_identifier(request.public_key)
        extensions = []
        for spec, constant in self._plan():
            if constant is not None:
                extensions.append(constant)
                continue
            value = self._extension(spec, request, ski)
            if value is not None:
                extensions.append(self._wrapped(spec, value))
        # All at once, with the issuer and the validity (the same for every certificate of a day) through the
        # constructor: add_extension() copies the builder and its list, and rechecks duplicates, per call
        # (duplicates are refused once, at the profile's load). The dates go in as the setters keep them
        # (naive UTC); they were computed, and their order checked, once in validity().
        builder = x509.CertificateBuilder(
            issuer_name=self.issuer_name if self.issuer_name is not None else subject,
            not_valid_before=naive[0], not_valid_after=naive[1],
            extensions=extensions) \
            .subject_name(subject) \
            .public_key(request.public_key) \
            .serial_number(serial if serial is not None else new_serial(self.profile.serial_octets))
        key = signer or self.signer
        if key is None:
            raise ConfigurationError("CA:KEY5", f"no signing key for {self.profile.title}")
        # ECDSA with SHA-256; cryptography writes the AlgorithmIdentifier without parameters (RFC 5758).
        return builder.sign(key, hashes.SHA256())
