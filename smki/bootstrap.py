"""``smki init``: the CA hierarchy, the Recovery and Contingency keys, and the database schema.

Idempotent: a complete instance is left as it is. The hierarchy is built in a temporary folder and
moved into place only once every certificate is signed and recorded, so a crash part-way leaves no
half-made hierarchy that later runs would trust.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from dataclasses import dataclass

from cryptography.x509.oid import NameOID
from sqlalchemy import select

from smki.ca.authority import CA_KEY_LABELS, CertificationAuthority, Hierarchy
from smki.ca.builder import CertificateRequest
from smki.ca.contingency import AES256_WRAP_PAD, wrap_contingency_key
from smki.ca.identifiers import serial_hex
from smki.ca.profile import load_certificate_profile
from smki.core.errors import ConfigurationError
from smki.instance import Instance
from smki.issuance import IssuanceService, NotIssued, Outcome, Signed, ledger_row, record_issuance
from smki.models import IssuanceRecord
from smki.schema import migrate

RECOVERY_KEY = "recovery"
CONTINGENCY_KEY = "contingency"
CONTINGENCY_WRAPPING_KEY = "contingency-wrapping-key"
# In the order they must be made: each is signed by one made before it.
HIERARCHY_ORDER = ("root_oca", "issuing_oca", "root_dca", "issuing_dca")


@dataclass(frozen=True)
class BootstrapResult:
    created: bool
    certificates: dict[str, str]  # name -> serial (hex)


def initialise(instance: Instance) -> BootstrapResult:
    migrate(instance.database)
    hierarchy = instance.hierarchy
    if hierarchy.exists():
        _record_in_ledger(instance)
        return BootstrapResult(False, {name: f"{hierarchy.certificate(name).serial_number:032X}"
                                       for name in (*HIERARCHY_ORDER, "recovery")})
    if instance.settings.ca_dir.exists() and any(instance.settings.ca_dir.iterdir()):
        # Never replace a hierarchy that has certificates out in the world: a damaged one needs a person.
        missing = [name for name in (*HIERARCHY_ORDER, "recovery") if not hierarchy.path(name).exists()]
        raise ConfigurationError("CA:CFG10", f"{instance.settings.ca_dir} exists but lacks {', '.join(missing)}; "
                                 "restore it from a backup, or move it away to create a new hierarchy.")
    return _build(instance)


def _record_in_ledger(instance: Instance) -> None:
    """An existing hierarchy pointed at a new database (SMKI_DATABASE_URL changed, or a restore): the
    ledger must still know every certificate this CA signed, so the CA's own are recorded again. Every
    generation of each (smki.ca_rotation), which also finishes a rotation stopped between its switch and
    its commit."""
    policies, hierarchy = instance.policies, instance.hierarchy
    recovery_role = policies.roles.by_name("recovery")
    assert recovery_role is not None
    certificates = [(name, certificate) for name in (*HIERARCHY_ORDER, "recovery")
                    for certificate in hierarchy.certificates(name)]
    table = IssuanceRecord.__table__
    with instance.database.engine.begin() as connection:
        known = set(connection.execute(select(table.c.serial).where(table.c.serial.in_(
            [serial_hex(c.serial_number) for _, c in certificates]))).scalars())
        rows = []
        for name, certificate in certificates:
            if serial_hex(certificate.serial_number) in known:
                continue
            recovery = name == "recovery"
            request = CertificateRequest(
                "organisation" if recovery else name, certificate.public_key(),  # type: ignore[arg-type]
                key_usage="digitalSignature" if recovery else None,
                remote_party_role=recovery_role.ou if recovery else None,
                entity_identifier=policies.environment.dcc_entity_identifiers["recovery"] if recovery else None)
            issuer = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            rows.append(ledger_row(certificate, request, issuer_name=str(issuer), channel="bootstrap",
                                   requested_by="smki init (recorded on a new database)", csr_sha256=None,
                                   now=certificate.not_valid_before_utc))
        record_issuance(connection, rows)


def _build(instance: Instance) -> BootstrapResult:
    settings, policies = instance.settings, instance.policies
    staging = settings.instance_dir / "ca.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    staged = Hierarchy(staging)
    ca = CertificationAuthority(policies, instance.keystore, staged)
    now = dt.datetime.now(dt.UTC)
    names = policies.environment.ca_names

    # Contingency: the key pair stays in the key store; the wrapping key is held apart, in custody.
    contingency_public = instance.keystore.generate(CONTINGENCY_KEY)
    wrapping_key = secrets.token_bytes(32)
    instance.custody.put_secret(CONTINGENCY_WRAPPING_KEY, wrapping_key)
    root_profile = load_certificate_profile(policies.directory, "root_oca")
    wrap_spec = root_profile.extension("wrappedApexContingencyKey")
    wrap_algorithm = wrap_spec.options.get("wrap_algorithm", AES256_WRAP_PAD) if wrap_spec else AES256_WRAP_PAD

    requests: list[tuple[str, CertificateRequest]] = []
    for name in HIERARCHY_ORDER:
        public_key = instance.keystore.generate(CA_KEY_LABELS[name])
        wrapped = wrap_contingency_key(contingency_public, wrapping_key, wrap_algorithm) \
            if name == "root_oca" else None
        requests.append((name, CertificateRequest(name, public_key, ca_name=names[name],
                                                  wrapped_contingency_key=wrapped)))
    recovery_public = instance.keystore.generate(RECOVERY_KEY)
    recovery_role = policies.roles.by_name("recovery")
    assert recovery_role is not None
    requests.append(("recovery", CertificateRequest(
        "organisation", recovery_public, key_usage="digitalSignature", remote_party_role=recovery_role.ou,
        entity_identifier=policies.environment.dcc_entity_identifiers["recovery"])))

    # The one issuance path, under the staged hierarchy: each CA certificate is signed (and linted) by
    # IssuanceService like any other, and all are recorded in one transaction. One at a time, because each
    # CA's certificate must be on disk before the next one it signs can name it as issuer.
    service = IssuanceService(ca, instance.database, policies)
    outcomes: list[Outcome] = []
    serials = {}
    for name, request in requests:
        [outcome] = service.sign([request], channel="bootstrap", requested_by="smki init", now=now).outcomes
        if isinstance(outcome, NotIssued):
            raise outcome.error
        staged.path(name).write_bytes(outcome.pem)
        outcomes.append(outcome)
        serials[name] = outcome.serial

    with instance.database.engine.begin() as connection:
        service.record(connection, Signed(outcomes, "bootstrap", "smki init"))
    shutil.rmtree(settings.ca_dir, ignore_errors=True)
    staging.rename(settings.ca_dir)
    return BootstrapResult(True, serials)
