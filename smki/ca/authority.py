"""The Certification Authority: signs certificates and revocation lists, and nothing else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from smki.ca.builder import CertificateRequest, ProfileBuilder
from smki.ca.identifiers import subject_key_identifier
from smki.ca.keystore import KeyStore
from smki.ca.profile import CERTIFICATE_PROFILES, load_certificate_profile, load_crl_profile
from smki.core.errors import ConfigurationError
from smki.core.policy import Policies

# Which private key signs as each CA. Labels, not files: the key store decides where keys live.
CA_KEY_LABELS = {
    "root_oca": "root-oca",
    "issuing_oca": "issuing-oca",
    "root_dca": "root-dca",
    "issuing_dca": "issuing-dca",
}
CA_NAMES = tuple(CA_KEY_LABELS)


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags | None = None


class Hierarchy:
    """The CA certificates of this instance, kept as PEM files in ``<instance>/ca``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._certificates: dict[str, x509.Certificate] = {}

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def exists(self) -> bool:
        return all(self.path(name).exists() for name in (*CA_NAMES, "recovery"))

    def certificate(self, name: str) -> x509.Certificate:
        if name not in self._certificates:
            path = self.path(name)
            if not path.exists():
                raise ConfigurationError("CA:CFG8", f"the {name} certificate is missing from "
                                         f"{self.directory}; run 'smki init'")
            self._certificates[name] = x509.load_pem_x509_certificate(path.read_bytes())
        return self._certificates[name]


class CertificationAuthority:
    def __init__(self, policies: Policies, keystore: KeyStore, hierarchy: Hierarchy) -> None:
        self.policies = policies
        self.keystore = keystore
        self.hierarchy = hierarchy
        self._builders: dict[str, ProfileBuilder] = {}

    def builder(self, profile_name: str) -> ProfileBuilder:
        if profile_name not in self._builders:
            if profile_name not in CERTIFICATE_PROFILES:
                raise ConfigurationError("CA:CFG9", f"there is no certificate profile {profile_name!r}")
            profile = load_certificate_profile(self.policies.directory, profile_name)
            environment = self.policies.environment
            if profile.issuer == "self":
                issuer_name, issuer_key_id = None, None
                signer = self.keystore.signer(CA_KEY_LABELS[profile_name])
            else:
                issuer = self.hierarchy.certificate(profile.issuer)
                issuer_name = issuer.subject  # the exact DER of the issuer's subject
                issuer_key_id = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
                signer = self.keystore.signer(CA_KEY_LABELS[profile.issuer])
            self._builders[profile_name] = ProfileBuilder(
                profile, policy_oid=environment.policy_oid(profile.policy),
                hardware_module_type=environment.hardware_module_type.dotted_string,
                issuer_name=issuer_name, issuer_key_id=issuer_key_id, signer=signer)
        return self._builders[profile_name]

    def issue(self, request: CertificateRequest, *, now: dt.datetime | None = None,
              serial: int | None = None) -> x509.Certificate:
        return self.builder(request.profile).build(request, now or dt.datetime.now(dt.UTC), serial)

    def issuer_of(self, profile_name: str) -> str:
        return load_certificate_profile(self.policies.directory, profile_name).issuer

    def sign_crl(self, profile_name: str, entries: Iterable[RevokedEntry], number: int,
                 this_update: dt.datetime) -> x509.CertificateRevocationList:
        profile = load_crl_profile(self.policies.directory, profile_name)
        issuer = self.hierarchy.certificate(profile.issuer)
        with_reason = any(e.type == "reasonCode" for e in profile.entry_extensions)
        reasons: dict[int, x509.CRLReason] = {}  # by id(): ReasonFlags members are singletons, hashing is slow
        revoked_certificates = []
        for entry in entries:
            revoked = (x509.RevokedCertificateBuilder().serial_number(entry.serial)
                       .revocation_date(entry.revoked_at))
            if with_reason and entry.reason is not None:
                reason = reasons.get(id(entry.reason))
                if reason is None:
                    reason = reasons[id(entry.reason)] = x509.CRLReason(entry.reason)
                revoked = revoked.add_extension(reason, critical=False)
            revoked_certificates.append(revoked.build())
        # The whole list goes to the builder at once: add_revoked_certificate() copies the list on every
        # call, which is quadratic (100,000 entries: ~25 s instead of ~1 s).
        builder = (x509.CertificateRevocationListBuilder(revoked_certificates=revoked_certificates)
                   .issuer_name(issuer.subject)
                   .last_update(this_update)
                   .next_update(this_update + dt.timedelta(hours=profile.next_update_hours)))
        for spec in profile.extensions:
            if spec.type == "authorityKeyIdentifier":
                ext: x509.ExtensionType = x509.AuthorityKeyIdentifier(
                    subject_key_identifier(issuer.public_key()), None, None)  # type: ignore[arg-type]
            elif spec.type == "cRLNumber":
                ext = x509.CRLNumber(number)
            else:
                raise ConfigurationError("CA:CFG7", f"profile {profile_name} names unknown extension {spec.type}")
            builder = builder.add_extension(ext, critical=spec.critical)
        return builder.sign(self.keystore.signer(CA_KEY_LABELS[profile.issuer]), hashes.SHA256())
