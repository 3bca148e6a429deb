"""The Certification Authority: signs certificates and revocation lists, and nothing else."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Mapping
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
# The Recovery certificate's key: the first generation's label in the key store (later ones are made at a key
# ceremony and held only in custody).
RECOVERY_KEY_LABEL = "recovery"
MANIFEST = "hierarchy.json"
MANIFEST_FORMAT = "smki-hierarchy/1"


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags | None = None


@dataclass(frozen=True)
class Generation:
    """One generation of one CA (or of the Recovery certificate): its PEM file in ``<instance>/ca`` and the key
    store label of its private key."""

    generation: int
    certificate: str   # file name in the hierarchy's folder
    key: str | None    # key store label (None: the key is held only in custody)

    def as_dict(self) -> dict[str, object]:
        return {"generation": self.generation, "certificate": self.certificate, "key": self.key}


def first_generation(name: str) -> Generation:
    """What ``smki init`` made: ``<name>.pem`` and the fixed label (every instance before any rotation)."""
    return Generation(1, f"{name}.pem", CA_KEY_LABELS.get(name, RECOVERY_KEY_LABEL))


class Hierarchy:
    """The CA certificates of this instance, kept as PEM files in ``<instance>/ca``.

    Each name (``root_oca`` ... ``recovery``) has one or more generations; the newest is current. The
    generations after the first are listed in ``ca/hierarchy.json``, replaced whole (written beside and
    renamed) at each rotation: that rename is the moment every process switches, so a crash leaves the old
    hierarchy or the new, never half. Without the file every name is at its first generation, which is
    what every instance made before rotation existed holds.
    """

    # How long a process trusts what it last read of the manifest before looking again: a switch made through
    # this object takes effect here at once, one made by another process within this many seconds. Looking at
    # every certificate signed would cost a stat (tens of microseconds) per certificate.
    RECHECK_SECONDS = 1.0

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._certificates: dict[str, x509.Certificate] = {}
        self._generations: dict[str, list[Generation]] | None = None
        self._seen: tuple[int, int, int] | None = None
        self._checked = -float("inf")

    # --- the manifest ----------------------------------------------------------------------------------
    def version(self, *, now: bool = False) -> tuple[int, int, int] | None:
        """What identifies the manifest on disk (changes at every switch, by this process or another), looked
        at again after :attr:`RECHECK_SECONDS` (or ``now``); a change drops what was cached under the old one."""
        moment = time.monotonic()
        if not now and moment - self._checked < self.RECHECK_SECONDS:
            return self._seen
        self._checked = moment
        try:
            stat = os.stat(self.directory / MANIFEST)
            seen: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            self._seen, self._generations = seen, None
            self._certificates.clear()
        return seen

    def _all(self) -> dict[str, list[Generation]]:
        self.version()
        if self._generations is None:
            path = self.directory / MANIFEST
            listed: dict[str, list[Generation]] = {}
            if path.exists():
                try:
                    body = json.loads(path.read_text(encoding="utf-8"))
                    if body.get("format") != MANIFEST_FORMAT:
                        raise ValueError(f"not {MANIFEST_FORMAT}")
                    listed = {name: [Generation(int(g["generation"]), str(g["certificate"]),
                                                None if g.get("key") is None else str(g["key"])) for g in gens]
                              for name, gens in body["names"].items()}
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    raise ConfigurationError("CA:CFG12", f"{path} is damaged ({exc}); restore the ca folder "
                                             "from a backup") from None
            self._generations = {name: listed.get(name) or [first_generation(name)]
                                 for name in (*CA_NAMES, "recovery")}
        return self._generations

    def generations(self, name: str) -> list[Generation]:
        """Every generation of ``name``, the first first; the last is current."""
        return list(self._all()[name])

    def current(self, name: str) -> Generation:
        return self._all()[name][-1]

    def key_label(self, name: str) -> str:
        label = self.current(name).key
        if label is None:
            raise ConfigurationError("CA:KEY6", f"the {name} key is held only in custody; it signs at a key "
                                     "ceremony, not from the key store")
        return label

    def switch(self, changes: Mapping[str, Generation]) -> dict[str, list[Generation]]:
        """Make each ``changes[name]`` current (appended to its generations), in one atomic replace of the
        manifest. Returns the generations before, for :meth:`restore`."""
        self.version(now=True)  # switch from what is on disk, not from what this process last read
        before = {name: list(gens) for name, gens in self._all().items()}
        after = {name: [*gens, changes[name]] if name in changes else gens for name, gens in before.items()}
        self._write(after)
        return before

    def restore(self, generations: Mapping[str, list[Generation]]) -> None:
        """Put back what :meth:`switch` returned (its transaction did not commit)."""
        self._write(dict(generations))

    def _write(self, generations: Mapping[str, list[Generation]]) -> None:
        body = {"format": MANIFEST_FORMAT, "names": {
            name: [g.as_dict() for g in gens] for name, gens in generations.items()
            if [g.as_dict() for g in gens] != [first_generation(name).as_dict()]}}
        path = self.directory / MANIFEST
        staged = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
        with open(staged, "w", encoding="utf-8") as handle:
            json.dump(body, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staged, path)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
        self.version(now=True)  # this process signs under the new hierarchy from now on

    # --- certificates ----------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """The current certificate's PEM file."""
        return self.directory / self.current(name).certificate

    def exists(self) -> bool:
        return all(self.path(name).exists() for name in (*CA_NAMES, "recovery"))

    def certificate(self, name: str) -> x509.Certificate:
        self.version()
        if name not in self._certificates:
            path = self.path(name)
            if not path.exists():
                raise ConfigurationError("CA:CFG8", f"the {name} certificate is missing from "
                                         f"{self.directory}; run 'smki init'")
            self._certificates[name] = x509.load_pem_x509_certificate(path.read_bytes())
        return self._certificates[name]

    def certificates(self, name: str) -> list[x509.Certificate]:
        """Every generation's certificate of ``name``, the first first (the old ones validate what they
        signed, and are what an ARL names)."""
        return [x509.load_pem_x509_certificate((self.directory / g.certificate).read_bytes())
                for g in self.generations(name)]


class Pending(Hierarchy):
    """A hierarchy as it will be after a switch, for signing the new generations before any process uses
    them: ``pending[name]`` is current here, nothing is written to the manifest."""

    def __init__(self, base: Hierarchy, pending: Mapping[str, Generation]) -> None:
        super().__init__(base.directory)
        self.base, self.pending = base, dict(pending)

    def _all(self) -> dict[str, list[Generation]]:
        return {name: [*gens, self.pending[name]] if name in self.pending else gens
                for name, gens in self.base._all().items()}

    def version(self, *, now: bool = False) -> tuple[int, int, int] | None:
        return self.base.version(now=now)


class CertificationAuthority:
    def __init__(self, policies: Policies, keystore: KeyStore, hierarchy: Hierarchy) -> None:
        self.policies = policies
        self.keystore = keystore
        self.hierarchy = hierarchy
        self._builders: dict[str, ProfileBuilder] = {}
        self._version: tuple[int, int, int] | None = None

    def builder(self, profile_name: str) -> ProfileBuilder:
        version = self.hierarchy.version()
        if version != self._version:  # the hierarchy was rotated (here or by another process): sign as it is now
            self._builders.clear()
            self._version = version
        if profile_name not in self._builders:
            if profile_name not in CERTIFICATE_PROFILES:
                raise ConfigurationError("CA:CFG9", f"there is no certificate profile {profile_name!r}")
            profile = load_certificate_profile(self.policies.directory, profile_name)
            environment = self.policies.environment
            if profile.issuer == "self":
                issuer_name, issuer_key_id = None, None
                signer = self.keystore.signer(self.hierarchy.key_label(profile_name))
            else:
                issuer = self.hierarchy.certificate(profile.issuer)
                issuer_name = issuer.subject  # the exact DER of the issuer's subject
                issuer_key_id = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
                signer = self.keystore.signer(self.hierarchy.key_label(profile.issuer))
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
        return builder.sign(self.keystore.signer(self.hierarchy.key_label(profile.issuer)), hashes.SHA256())
