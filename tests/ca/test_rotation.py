"""The hierarchy after ``smki init``: a new Issuing OCA, a new Root OCA with a new wrapped Contingency key, a new
Recovery certificate, a CA certificate revoked onto the ARL. Each keeps the hierarchy valid for an independent
verifier (``openssl verify``), old certificates keep validating, and a failure or a crash at any step leaves
the old hierarchy or the new one, never a mix."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from repository.store import CertificateRepository
from smki import ca_rotation
from smki.bootstrap import initialise
from smki.ca.authority import Hierarchy
from smki.ca.contingency import unwrap_contingency_key
from smki.ca.identifiers import serial_hex
from smki.core.asn1 import WRAPPED_APEX_CONTINGENCY_KEY_OID
from smki.core.errors import ConfigurationError, SmkiError
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.models import IssuanceRecord
from smki.publication import lodge_hierarchy
from smki.recovery.revocation import revoke_ca_certificate
from tests.ca import craft

OPENSSL = shutil.which("openssl")
ACTOR = "dcc:ca-officer"


def issue(instance: Instance, name: str = "o") -> x509.Certificate:
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    return service.issue_from_csr(craft.organisation(craft.p256(name)), channel="operator",
                                  requested_by="test").certificate


def pem(path: Path, *certificates: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certificates))
    return path


def openssl_accepts(tmp_path: Path, instance: Instance, leaf: x509.Certificate, root: x509.Certificate,
                    issuing: x509.Certificate) -> bool:
    if OPENSSL is None:
        pytest.skip("the openssl command is not installed")
    policy = instance.policies.environment.organisation_policy.dotted_string
    done = subprocess.run([OPENSSL, "verify", "-x509_strict", "-policy", policy, "-explicit_policy",
                           "-CAfile", str(pem(tmp_path / "root.pem", root)),
                           "-untrusted", str(pem(tmp_path / "issuing.pem", issuing)),
                           str(pem(tmp_path / "leaf.pem", leaf))], capture_output=True, text=True, timeout=60)
    return done.returncode == 0 and done.stdout.strip().endswith(": OK")


def ledger_serials(instance: Instance) -> set[str]:
    with instance.database.session() as session:
        return set(session.execute(select(IssuanceRecord.serial)).scalars())


def reopened(instance: Instance) -> Instance:
    """The instance as another process (or a restart) sees it."""
    return Instance(instance.settings)


def test_a_new_issuing_oca_signs_every_later_organisation_certificate(instance: Instance, tmp_path: Path) -> None:
    root, old_issuing = instance.hierarchy.certificate("root_oca"), instance.hierarchy.certificate("issuing_oca")
    before = issue(instance, "before")

    rotation = ca_rotation.new_issuing_oca(instance, actor=ACTOR)

    assert (rotation.name, rotation.generation) == ("issuing_oca", 2)
    assert rotation.old_serial == serial_hex(old_issuing.serial_number)
    assert rotation.new_serial == serial_hex(rotation.certificate.serial_number) != rotation.old_serial
    rotation.certificate.verify_directly_issued_by(root)
    after = issue(instance, "after")
    after.verify_directly_issued_by(rotation.certificate)
    assert openssl_accepts(tmp_path, instance, after, root, rotation.certificate)
    # what the old Issuing OCA signed still validates, through the old certificate the hierarchy keeps
    assert openssl_accepts(tmp_path, instance, before, root, old_issuing)
    assert not openssl_accepts(tmp_path, instance, before, root, rotation.certificate)
    assert [serial_hex(c.serial_number) for c in instance.hierarchy.certificates("issuing_oca")] == \
        [rotation.old_serial, rotation.new_serial]
    # recorded in the ledger and lodged in the Repository like the hierarchy's other certificates
    assert rotation.new_serial in ledger_serials(instance)
    lodged = CertificateRepository(instance.database).get(rotation.new_serial)
    assert lodged is not None and lodged.kind == "oca" and lodged.status == "I"
    assert instance.keystore.has("issuing-oca-g2")
    # another process (a restart) sees the new generation; the old key label stays for the old certificate
    other = reopened(instance)
    assert other.hierarchy.certificate("issuing_oca") == rotation.certificate
    issue(other, "other").verify_directly_issued_by(rotation.certificate)
    assert initialise(other).certificates["issuing_oca"] == rotation.new_serial


def test_a_running_process_switches_without_a_restart(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Hierarchy, "RECHECK_SECONDS", 0.0)  # it looks again at once rather than within a second
    running = reopened(instance)
    issue(running, "warm").verify_directly_issued_by(running.hierarchy.certificate("issuing_oca"))  # caches built
    rotation = ca_rotation.new_issuing_oca(instance, actor=ACTOR)
    issue(running, "switched").verify_directly_issued_by(rotation.certificate)


def test_the_compromised_issuing_oca_goes_on_an_arl_the_root_oca_signs(instance: Instance, tmp_path: Path) -> None:
    lodge_hierarchy(instance)
    rotation = ca_rotation.new_issuing_oca(instance, actor=ACTOR)

    arl = revoke_ca_certificate(instance, "issuing_oca", reason="caCompromise", actor=ACTOR,
                                serial=rotation.old_serial)

    assert arl.revocation_list == "arl"
    listed = x509.load_der_x509_crl(arl.der)
    assert [serial_hex(r.serial_number) for r in listed] == [rotation.old_serial]
    root = instance.hierarchy.certificate("root_oca")
    assert listed.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    if OPENSSL:
        (tmp_path / "arl.der").write_bytes(arl.der)
        done = subprocess.run([OPENSSL, "crl", "-inform", "DER", "-in", str(tmp_path / "arl.der"), "-CAfile",
                               str(pem(tmp_path / "r.pem", root)), "-verify", "-noout"],
                              capture_output=True, text=True, timeout=60)
        assert "verify OK" in done.stdout + done.stderr
    assert CertificateRepository(instance.database).get(rotation.old_serial).status == "R"  # type: ignore[union-attr]
    issue(instance, "still").verify_directly_issued_by(rotation.certificate)  # the new one is not touched


def test_revoking_the_current_issuing_oca_stops_issuance_until_a_new_one(instance: Instance) -> None:
    revoke_ca_certificate(instance, "issuing_oca", reason="caCompromise", actor=ACTOR)
    with pytest.raises(SmkiError, match="CA:E208"):
        issue(instance, "refused")
    rotation = ca_rotation.new_issuing_oca(instance, actor=ACTOR)
    issue(instance, "resumed").verify_directly_issued_by(rotation.certificate)


def test_a_new_root_oca_carries_a_new_wrapped_contingency_key(instance: Instance, tmp_path: Path) -> None:
    old_root = instance.hierarchy.certificate("root_oca")
    recovery_key = instance.hierarchy.certificate("recovery").public_key()
    labels_before = {p.name for p in instance.settings.keystore_dir.iterdir()}

    rotated = ca_rotation.new_root_oca(instance, actor=ACTOR)

    root = rotated.root.certificate
    assert rotated.root.generation == 2 and root.subject == old_root.subject and root != old_root
    root.verify_directly_issued_by(root)
    extension = root.extensions.get_extension_for_oid(x509.ObjectIdentifier(WRAPPED_APEX_CONTINGENCY_KEY_OID))
    contingency = rotated.contingency
    assert len(contingency.wrapping_key) == 32 and contingency.private_key is not None
    unwrapped = unwrap_contingency_key(extension.value.value, contingency.wrapping_key)  # type: ignore[attr-defined]
    assert unwrapped == contingency.public_key == contingency.private_key.public_key()
    rotated.issuing_oca.certificate.verify_directly_issued_by(root)
    assert rotated.recovery is not None and rotated.recovery.certificate.public_key() == recovery_key
    rotated.recovery.certificate.verify_directly_issued_by(rotated.issuing_oca.certificate)
    leaf = issue(instance, "under-new-root")
    assert openssl_accepts(tmp_path, instance, leaf, root, rotated.issuing_oca.certificate)
    assert not openssl_accepts(tmp_path, instance, leaf, old_root, rotated.issuing_oca.certificate)
    # only the two new CA keys were added to the key store: the Contingency key is the caller's, for custody
    added = {p.name for p in instance.settings.keystore_dir.iterdir()} - labels_before
    assert added == {"root-oca-g2.key.pem", "issuing-oca-g2.key.pem"}
    assert {rotated.root.new_serial, rotated.issuing_oca.new_serial, rotated.recovery.new_serial} <= \
        ledger_serials(instance)


def test_a_new_root_oca_can_carry_a_contingency_key_made_at_a_ceremony(instance: Instance) -> None:
    key, wrapping = ec.generate_private_key(ec.SECP256R1()), os.urandom(32)
    rotated = ca_rotation.new_root_oca(instance, actor=ACTOR, contingency_public_key=key.public_key(),
                                       wrapping_key=wrapping, recertify_recovery=False)
    value = rotated.root.certificate.extensions.get_extension_for_oid(
        x509.ObjectIdentifier(WRAPPED_APEX_CONTINGENCY_KEY_OID)).value
    assert unwrap_contingency_key(value.value, wrapping) == key.public_key()  # type: ignore[attr-defined]
    assert rotated.contingency.private_key is None and rotated.recovery is None
    with pytest.raises(ConfigurationError, match="CA:ROT3"):
        ca_rotation.new_root_oca(instance, actor=ACTOR, contingency_public_key=key.public_key(), wrapping_key=b"x")


def test_a_new_recovery_certificate(instance: Instance, tmp_path: Path) -> None:
    old = instance.hierarchy.certificate("recovery")
    key = ec.generate_private_key(ec.SECP256R1())
    rotation = ca_rotation.certify_recovery_key(instance, key.public_key(), actor=ACTOR)
    current = instance.hierarchy.certificate("recovery")
    assert current == rotation.certificate and current.public_key() == key.public_key()
    assert current.subject == old.subject  # the same role and DCC recovery entity identifier
    assert openssl_accepts(tmp_path, instance, current, instance.hierarchy.certificate("root_oca"),
                           instance.hierarchy.certificate("issuing_oca"))
    assert instance.hierarchy.current("recovery").key is None  # held in custody, not in the key store


def test_revocation_names_a_certificate_of_the_hierarchy(instance: Instance) -> None:
    with pytest.raises(ConfigurationError, match="CA:ROT1"):
        ca_rotation.revoke_ca_certificate(instance, "supplier", reason="caCompromise", actor=ACTOR)
    with pytest.raises(ConfigurationError, match="CA:ROT2"):
        ca_rotation.revoke_ca_certificate(instance, "issuing_oca", reason="caCompromise", actor=ACTOR,
                                          serial="0123")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(serial=st.text(max_size=40))
def test_any_serial_an_operator_types_is_refused_with_a_code(instance: Instance, serial: str) -> None:
    with pytest.raises(ConfigurationError, match="CA:ROT2"):
        ca_rotation.revoke_ca_certificate(instance, "issuing_oca", reason="caCompromise", actor=ACTOR,
                                          serial=serial or "00")


def test_a_damaged_manifest_is_a_coded_error(instance: Instance) -> None:
    (instance.settings.ca_dir / "hierarchy.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="CA:CFG12"):
        Hierarchy(instance.settings.ca_dir).certificate("issuing_oca")


# --- failures and crashes ---------------------------------------------------------------------------------

def assert_old_hierarchy_works(instance: Instance, old_issuing: x509.Certificate, tmp_path: Path) -> None:
    other = reopened(instance)
    assert other.hierarchy.certificate("issuing_oca") == old_issuing
    assert other.hierarchy.generations("issuing_oca")[-1].generation == 1
    leaf = issue(other, "after-failure")
    assert openssl_accepts(tmp_path, other, leaf, other.hierarchy.certificate("root_oca"), old_issuing)


def test_a_failure_before_the_switch_leaves_the_old_hierarchy(instance: Instance, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    old_issuing, serials = instance.hierarchy.certificate("issuing_oca"), ledger_serials(instance)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the Repository is down")
    monkeypatch.setattr(CertificateRepository, "lodge_many", refuse)
    with pytest.raises(RuntimeError):
        ca_rotation.new_issuing_oca(instance, actor=ACTOR)
    monkeypatch.undo()
    assert ledger_serials(instance) == serials
    assert_old_hierarchy_works(instance, old_issuing, tmp_path)
    # and the next attempt succeeds, taking the generation the failed one did not
    assert ca_rotation.new_issuing_oca(instance, actor=ACTOR).generation == 2


def test_a_failed_commit_puts_the_old_hierarchy_back(instance: Instance, tmp_path: Path) -> None:
    old_issuing, serials = instance.hierarchy.certificate("issuing_oca"), ledger_serials(instance)
    engine = instance.database.engine

    def commit_fails(_connection: object) -> None:
        assert reopened(instance).hierarchy.current("issuing_oca").generation == 2  # switched just before
        raise RuntimeError("the commit failed")
    event.listen(engine, "commit", commit_fails)
    try:
        with pytest.raises(RuntimeError, match="commit failed"):
            ca_rotation.new_root_oca(instance, actor=ACTOR)
    finally:
        event.remove(engine, "commit", commit_fails)
    assert ledger_serials(instance) == serials
    assert_old_hierarchy_works(instance, old_issuing, tmp_path)


def test_a_failure_between_the_new_root_and_its_issuing_oca_leaves_the_old_hierarchy(
        instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_root, old_issuing = instance.hierarchy.certificate("root_oca"), instance.hierarchy.certificate("issuing_oca")

    def broken(_rotating: object) -> None:
        raise RuntimeError("crashed after signing the new root")
    monkeypatch.setattr(ca_rotation, "_issuing_oca", broken)
    with pytest.raises(RuntimeError):
        ca_rotation.new_root_oca(instance, actor=ACTOR)
    monkeypatch.undo()
    assert reopened(instance).hierarchy.certificate("root_oca") == old_root
    assert_old_hierarchy_works(instance, old_issuing, tmp_path)


def _rotate_and_die(settings: object) -> None:
    """In a child process: rotate, and die right after the switch, before the commit."""
    switch = Hierarchy.switch

    def switch_then_die(self: Hierarchy, changes):  # type: ignore[no-untyped-def]
        switch(self, changes)
        os._exit(17)
    Hierarchy.switch = switch_then_die  # type: ignore[method-assign]
    ca_rotation.new_issuing_oca(Instance(settings), actor=ACTOR)  # type: ignore[arg-type]


def test_a_crash_between_the_switch_and_the_commit_is_finished_by_smki_init(instance: Instance,
                                                                            tmp_path: Path) -> None:
    serials = ledger_serials(instance)
    instance.database.engine.dispose()  # no pooled connection crosses the fork
    child = multiprocessing.get_context("fork").Process(target=_rotate_and_die, args=(instance.settings,))
    child.start()
    child.join(60)
    assert child.exitcode == 17

    restarted = reopened(instance)
    new = restarted.hierarchy.certificate("issuing_oca")
    assert restarted.hierarchy.current("issuing_oca").generation == 2  # the new hierarchy, whole
    assert serial_hex(new.serial_number) not in ledger_serials(restarted)  # its commit never happened
    initialise(restarted)  # what smki serve runs at each start
    lodge_hierarchy(restarted)  # what the publisher does at start
    recorded = ledger_serials(restarted)
    assert serial_hex(new.serial_number) in recorded and serials <= recorded
    assert {serial_hex(c.serial_number) for c in restarted.hierarchy.certificates("issuing_oca")} <= recorded
    assert CertificateRepository(restarted.database).get(serial_hex(new.serial_number)) is not None
    leaf = issue(restarted, "after-crash")
    assert openssl_accepts(tmp_path, restarted, leaf, restarted.hierarchy.certificate("root_oca"), new)


def test_a_long_lived_issuance_service_follows_the_rotation(instance: Instance) -> None:
    """The RA, the Device CSR services and the estate each keep one IssuanceService for their lifetime: after the
    compromised Issuing OCA is revoked and replaced, that same service issues under the new one at once."""
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    csr = craft.organisation(craft.p256("long-lived"))
    service.issue_from_csr(csr, channel="operator", requested_by="test")
    revoke_ca_certificate(instance, "issuing_oca", reason="caCompromise", actor=ACTOR)
    instance.hierarchy.version(now=True)
    with pytest.raises(SmkiError, match="CA:E208"):
        service.issue_from_csr(csr, channel="operator", requested_by="test")
    rotation = ca_rotation.new_issuing_oca(instance, actor=ACTOR)
    instance.hierarchy.version(now=True)
    issued = service.issue_from_csr(csr, channel="operator", requested_by="test")
    issued.certificate.verify_directly_issued_by(rotation.certificate)
