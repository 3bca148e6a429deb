"""Changes to the CA hierarchy after smki init: a new Issuing OCA, a new Root OCA, a new Recovery certificate,
and a CA certificate revoked onto the ARL.

Each rotation makes new keys under new labels (``issuing-oca-g2`` ...), signs the new certificates through the
one issuance path (:class:`smki.issuance.IssuanceService`, linted like every CA certificate) against the
hierarchy as it *will* be (:class:`smki.ca.authority.Pending`), and writes their PEM files beside the old ones.
Then, in one database transaction, the ledger rows and the Repository's records are written and the hierarchy's
manifest is switched (one atomic rename, :meth:`Hierarchy.switch`) just before the commit; if the commit fails
the manifest is put back. So every process signs with the old hierarchy or the new, never a mix:

- a failure before the switch leaves the old hierarchy in use (the new files are unused, and the next rotation
  of that name overwrites them);
- a process that dies between the switch and the commit leaves the new hierarchy in use with its certificates
  not yet in the ledger or the Repository; ``smki init`` (run by ``smki serve`` at each start) records every
  generation in the ledger and the publisher lodges the current ones at start, which finishes it.

The old certificates stay in ``<instance>/ca`` and in the manifest: they validate what they signed, and are
what an ARL names. The new Recovery and Contingency private keys are never written to the key store: they are
returned, for custody (``smki.recovery``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from repository.store import CertificateRepository, Revocation
from smki.ca.authority import CA_KEY_LABELS, CA_NAMES, RECOVERY_KEY_LABEL, CertificationAuthority, Generation, Pending
from smki.ca.builder import CertificateRequest
from smki.ca.contingency import AES256_WRAP_PAD, wrap_contingency_key
from smki.ca.identifiers import serial_hex
from smki.ca.profile import load_certificate_profile
from smki.core.errors import ConfigurationError
from smki.instance import Instance
from smki.issuance import IssuanceService, IssuedCertificate, NotIssued, Signed

CHANNEL = "ca_rotation"
NOT_A_CA = "CA:ROT1"            # not a certificate of the hierarchy
NOT_THIS_CA = "CA:ROT2"         # the serial is no generation of that name
WRAPPING_KEY = "CA:ROT3"        # a contingency wrapping key that is not 32 bytes


@dataclass(frozen=True)
class Rotation:
    name: str                       # "issuing_oca" | "root_oca" | "recovery"
    old_serial: str                 # hex as the ledger writes serials
    new_serial: str
    certificate: x509.Certificate   # the new certificate
    generation: int                 # 2 for the first rotation, ...


@dataclass(frozen=True)
class ContingencyMaterial:
    """The new Contingency key pair and its symmetric wrapping key, wrapped into the new Root OCA: for the
    caller to take into custody (a ``new_key`` ceremony with ``material=``). ``private_key`` is None when the
    caller gave only the public key (it holds the private one already)."""

    public_key: ec.EllipticCurvePublicKey
    wrapping_key: bytes
    private_key: ec.EllipticCurvePrivateKey | None = None

    def __repr__(self) -> str:
        return "ContingencyMaterial(<public key>, <wrapping key>, <private key>)"


@dataclass(frozen=True)
class RootRotation:
    root: Rotation
    issuing_oca: Rotation
    contingency: ContingencyMaterial
    recovery: Rotation | None = None  # the Recovery certificate re-issued under the new Issuing OCA


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)


def _file_name(name: str, generation: int, serial: str) -> str:
    return f"{name}.g{generation}.{serial[:16].lower()}.pem"


def _write_pem(path: Path, pem: bytes) -> None:
    """Written beside and renamed: a PEM file is complete or absent."""
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(staged, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staged, path)


@contextmanager
def _one_at_a_time(instance: Instance) -> Iterator[None]:
    """One rotation of an instance at a time, whatever the process: two would each switch the manifest from
    what they read, and the second would drop the first's generation."""
    path = instance.hierarchy.directory / ".rotation.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


class _Rotating:
    """One rotation in the making: the new generations, signed in order (each may sign the next), then made
    current together by :meth:`commit`."""

    def __init__(self, instance: Instance, actor: str, now: dt.datetime) -> None:
        self.instance, self.actor, self.now = instance, actor, now
        self.hierarchy = instance.hierarchy
        self.pending: dict[str, Generation] = {}
        self.issued: dict[str, IssuedCertificate] = {}
        self.old: dict[str, str] = {}

    def next_generation(self, name: str, *, key_in_store: bool) -> Generation:
        number = max(g.generation for g in self.hierarchy.generations(name)) + 1
        label = f"{CA_KEY_LABELS.get(name, RECOVERY_KEY_LABEL)}-g{number}" if key_in_store else None
        return Generation(number, f"{name}.g{number}.pem", label)  # the file is named once signed

    def new_ca_key(self, name: str) -> tuple[Generation, ec.EllipticCurvePublicKey]:
        generation = self.next_generation(name, key_in_store=True)
        assert generation.key is not None
        return generation, self.instance.keystore.generate(generation.key)

    def sign(self, name: str, generation: Generation, request: CertificateRequest) -> IssuedCertificate:
        """Sign ``request`` against the hierarchy with every generation pending so far (and this one) current."""
        self.old[name] = serial_hex(self.hierarchy.certificate(name).serial_number)
        self.pending[name] = generation
        staged = Pending(self.hierarchy, self.pending)
        service = IssuanceService(CertificationAuthority(self.instance.policies, self.instance.keystore, staged),
                                  self.instance.database, self.instance.policies)
        [outcome] = service.sign([request], channel=CHANNEL, requested_by=self.actor, now=self.now).outcomes
        if isinstance(outcome, NotIssued):
            del self.pending[name]
            raise outcome.error
        # named by serial too: a rotation that failed, or one prepared alongside (a key ceremony), never
        # overwrites a file another generation names
        generation = self.pending[name] = replace(generation, certificate=_file_name(name, generation.generation,
                                                                                     outcome.serial))
        _write_pem(self.hierarchy.directory / generation.certificate, outcome.pem)
        self.issued[name] = outcome
        return outcome

    def record(self, connection: Connection | Session) -> None:
        """The ledger rows and the Repository's records, in the caller's transaction."""
        service = IssuanceService(self.instance.ca, self.instance.database, self.instance.policies)
        service.record(connection, Signed(list(self.issued.values()), CHANNEL, self.actor))
        CertificateRepository(self.instance.database).lodge_many(
            [issued.der for issued in self.issued.values()], status="I", lodged_by=CHANNEL,
            connection=connection, fresh=True)

    def commit(self) -> dict[str, Rotation]:
        """Record and switch in one transaction; the switch is put back if the commit fails."""
        before = {name: self.hierarchy.generations(name) for name in (*CA_NAMES, "recovery")}
        switching = False
        try:
            with self.instance.database.engine.begin() as connection:
                self.record(connection)
                switching = True
                self.hierarchy.switch(self.pending)
        except BaseException:
            if switching:  # the switch, or the commit after it, failed: the old hierarchy stays
                self.hierarchy.restore(before)
            raise
        return self.rotations()

    def rotations(self) -> dict[str, Rotation]:
        return {name: Rotation(name, self.old[name], issued.serial, issued.certificate, self.pending[name].generation)
                for name, issued in self.issued.items()}


def _issuing_oca(rotating: _Rotating) -> None:
    generation, public_key = rotating.new_ca_key("issuing_oca")
    names = rotating.instance.policies.environment.ca_names
    rotating.sign("issuing_oca", generation, CertificateRequest("issuing_oca", public_key,
                                                               ca_name=names["issuing_oca"]))


def _recovery(rotating: _Rotating, public_key: ec.EllipticCurvePublicKey) -> None:
    policies = rotating.instance.policies
    role = policies.roles.by_name("recovery")
    assert role is not None
    rotating.sign("recovery", rotating.next_generation("recovery", key_in_store=False), CertificateRequest(
        "organisation", public_key, key_usage="digitalSignature", remote_party_role=role.ou,
        entity_identifier=policies.environment.dcc_entity_identifiers["recovery"]))


def new_issuing_oca(instance: Instance, *, actor: str, now: dt.datetime | None = None) -> Rotation:
    """A new Issuing OCA key and certificate, signed by the current Root OCA; every Organisation Certificate
    signed after this returns is signed by it. The old one stays (revoke it with :func:`revoke_ca_certificate`,
    giving ``serial=rotation.old_serial``)."""
    with _one_at_a_time(instance):
        rotating = _Rotating(instance, actor, _now(now))
        _issuing_oca(rotating)
        return rotating.commit()["issuing_oca"]


def certify_recovery_key(instance: Instance, public_key: ec.EllipticCurvePublicKey, *, actor: str,
                         now: dt.datetime | None = None) -> Rotation:
    """A new Recovery certificate (Organisation profile, recovery role, the DCC's recovery entity identifier,
    as ``smki init`` makes it) for a key made at a ``new_key`` ceremony; it becomes the hierarchy's."""
    with _one_at_a_time(instance):
        rotating = _Rotating(instance, actor, _now(now))
        _recovery(rotating, public_key)
        return rotating.commit()["recovery"]


def prepare_recovery_certificate(instance: Instance, public_key: ec.EllipticCurvePublicKey, *, actor: str,
                                 now: dt.datetime | None = None) -> PreparedRecovery:
    """:func:`certify_recovery_key` in two steps, for a caller that records it in its own transaction (the
    key ceremony, whose audit record names the serial): sign now, :meth:`PreparedRecovery.record` in the
    caller's transaction, :meth:`PreparedRecovery.switch` after it commits. If the caller dies in between,
    :func:`adopt_recovery_certificate` finishes it from the ledger."""
    rotating = _Rotating(instance, actor, _now(now))
    _recovery(rotating, public_key)
    return PreparedRecovery(rotating)


@dataclass
class PreparedRecovery:
    rotating: _Rotating

    @property
    def rotation(self) -> Rotation:
        return self.rotating.rotations()["recovery"]

    def record(self, connection: Connection | Session) -> None:
        self.rotating.record(connection)

    def switch(self) -> Rotation:
        rotating = self.rotating
        with _one_at_a_time(rotating.instance):
            taken = {g.generation for g in rotating.hierarchy.generations("recovery")}
            if rotating.pending["recovery"].generation in taken:  # another certification switched meanwhile
                number = max(taken) + 1
                rotating.pending["recovery"] = replace(rotating.pending["recovery"], generation=number)
            rotating.hierarchy.switch(rotating.pending)
        return self.rotation


def adopt_recovery_certificate(instance: Instance, certificate: x509.Certificate) -> Rotation | None:
    """Make ``certificate`` (a Recovery certificate already recorded in the ledger) the hierarchy's, if it is
    not already: finishes a key ceremony that died between its commit and its switch. Idempotent."""
    hierarchy = instance.hierarchy
    with _one_at_a_time(instance):
        current = hierarchy.certificate("recovery")
        if current.serial_number == certificate.serial_number:
            return None
        rotating = _Rotating(instance, "recovery-reconcile", _now(None))
        number = rotating.next_generation("recovery", key_in_store=False).generation
        generation = Generation(number, _file_name("recovery", number, serial_hex(certificate.serial_number)), None)
        _write_pem(hierarchy.directory / generation.certificate,
                   certificate.public_bytes(serialization.Encoding.PEM))
        hierarchy.switch({"recovery": generation})
    return Rotation("recovery", serial_hex(current.serial_number), serial_hex(certificate.serial_number),
                    certificate, generation.generation)


def new_root_oca(instance: Instance, *, actor: str, now: dt.datetime | None = None,
                 contingency_public_key: ec.EllipticCurvePublicKey | None = None, wrapping_key: bytes | None = None,
                 recertify_recovery: bool = True) -> RootRotation:
    """The contingency scenario's new Root OCA: a new Root OCA key, carrying a new Contingency public key
    wrapped under a new symmetric key (``smki.ca.contingency``), and a new Issuing OCA signed by it (and, unless
    told not to, the Recovery certificate re-issued under that Issuing OCA for the same Recovery key), made
    current together. The Contingency key pair and wrapping key are made here unless given; they are returned
    and never written to the key store: the caller takes them into custody. The old Contingency key and
    wrapping key (in custody) are what sign and release this new root to the devices (mode 9)."""
    if (contingency_public_key is None) != (wrapping_key is None):
        raise ConfigurationError(WRAPPING_KEY, "give both the Contingency public key and its wrapping key, or "
                                 "neither (then both are made)")
    private_key = None
    if contingency_public_key is None:
        private_key = ec.generate_private_key(ec.SECP256R1())
        contingency_public_key, wrapping_key = private_key.public_key(), secrets.token_bytes(32)
    assert wrapping_key is not None
    if len(wrapping_key) != 32:
        raise ConfigurationError(WRAPPING_KEY, "the contingency wrapping key is 32 bytes (AES-256 key wrap)")
    policies = instance.policies
    spec = load_certificate_profile(policies.directory, "root_oca").extension("wrappedApexContingencyKey")
    algorithm = spec.options.get("wrap_algorithm", AES256_WRAP_PAD) if spec else AES256_WRAP_PAD
    names = policies.environment.ca_names

    with _one_at_a_time(instance):
        rotating = _Rotating(instance, actor, _now(now))
        recovery_key = instance.hierarchy.certificate("recovery").public_key()
        generation, public_key = rotating.new_ca_key("root_oca")
        rotating.sign("root_oca", generation, CertificateRequest(
            "root_oca", public_key, ca_name=names["root_oca"],
            wrapped_contingency_key=wrap_contingency_key(contingency_public_key, wrapping_key, algorithm)))
        _issuing_oca(rotating)
        if recertify_recovery:
            assert isinstance(recovery_key, ec.EllipticCurvePublicKey)
            _recovery(rotating, recovery_key)
        rotations = rotating.commit()
    return RootRotation(rotations["root_oca"], rotations["issuing_oca"],
                        ContingencyMaterial(contingency_public_key, wrapping_key, private_key),
                        rotations.get("recovery"))


def revoke_ca_certificate(instance: Instance, name: str, *, reason: str, actor: str,
                          now: dt.datetime | None = None, serial: str | None = None) -> Revocation:
    """Revoke one generation of ``name`` (the current one unless ``serial`` names another) in the Repository,
    lodging it first if it is not: an OCA certificate goes to the ARL, the Recovery certificate to the CRL.
    The list itself is signed by the publisher (``smki.recovery.revocation`` publishes it at once). From this
    moment the issuance path refuses to sign under it (``CA:E208``)."""
    if name not in (*CA_NAMES, "recovery"):
        raise ConfigurationError(NOT_A_CA, f"{name!r} is not a certificate of the hierarchy; use one of "
                                 f"{', '.join((*CA_NAMES, 'recovery'))}")
    hierarchy = instance.hierarchy
    certificates = hierarchy.certificates(name)
    try:
        wanted = int(serial, 16) if serial else hierarchy.certificate(name).serial_number
    except ValueError:
        wanted = -1  # not hex: no generation has it, refused below with the serials there are
    certificate = next((c for c in certificates if c.serial_number == wanted), None)
    if certificate is None:
        raise ConfigurationError(NOT_THIS_CA, f"serial {serial} is none of the {name} certificates "
                                 f"({', '.join(serial_hex(c.serial_number) for c in certificates)})")
    repository = CertificateRepository(instance.database)
    record = repository.lodge(certificate.public_bytes(serialization.Encoding.DER), status="I",
                              lodged_by=CHANNEL).record
    return repository.revoke(record.serial, reason, _now(now), requested_by=actor, issuer=record.issuer)
