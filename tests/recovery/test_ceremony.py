"""Custody and ceremonies against a real database and the real audit chain: the quorum works; m-1 shares, a
forged share, a repeated share, a withdrawn custodian and a ceremony without a PMA decision each fail with
their codes; every step and every refusal is in the chain; the key is never written anywhere in clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from smki.bootstrap import CONTINGENCY_WRAPPING_KEY, RECOVERY_KEY
from smki.ca.keystore import private_key_material
from smki.instance import Instance
from smki.ra import audit
from smki.ra.identity import Principal
from smki.ra.models import AuditRecord
from smki.ra.service import RegistrationAuthority
from smki.recovery import shares as threshold
from smki.recovery.ceremony import CeremonySession, record_decision
from smki.recovery.custody import Custodian, IssuedShare, binding, status
from smki.recovery.errors import CustodyRefused
from smki.recovery.intake import take_into_custody
from tests.recovery.conftest import PASSPHRASES, Custodians

ACTOR = "dcc:key-ceremony-officer"


def pma(ra: RegistrationAuthority, custodians: Custodians) -> Principal:
    return ra.authenticate_token(custodians.pma.token)


def decide(ra: RegistrationAuthority, custodians: Custodians, key: str = "recovery", purpose: str = "use") -> int:
    return record_decision(ra.database, pma(ra, custodians), key_name=key, purpose=purpose,
                           reason="Recovery Scenario Exercise")


def opened(ra: RegistrationAuthority, custodians: Custodians, key: str = "recovery",
           purpose: str = "use") -> CeremonySession:
    return CeremonySession.open(ra.database, ra.instance.policies.custody, key_name=key,
                                decision_id=decide(ra, custodians, key, purpose), actor=ACTOR)


@pytest.fixture
def recovery_shares(ra: RegistrationAuthority, custodians: Custodians) -> list[IssuedShare]:
    return take_into_custody(ra.instance, "recovery", custodians.all(), ACTOR)


def present(ceremony: CeremonySession, custodians: Custodians, issued: list[IssuedShare], n: int) -> int:
    return ceremony.present(issued[n].appointment_id, PASSPHRASES[n], issued[n].sealed)


def refused(code: str) -> pytest.RaisesExc[CustodyRefused]:
    return pytest.raises(CustodyRefused, match=code)


def actions(ra: RegistrationAuthority) -> list[tuple[str, str]]:
    with ra.database.session() as session:
        return [(r.action, r.detail) for r in session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars()]


def test_a_quorum_reconstructs_the_recovery_key_for_the_ceremony_only(
        ra: RegistrationAuthority, custodians: Custodians, recovery_shares: list[IssuedShare]) -> None:
    original = ra.instance.hierarchy.certificate("recovery").public_key()
    assert not ra.instance.keystore.has(RECOVERY_KEY)  # in custody: usable only at a ceremony
    ceremony = opened(ra, custodians)
    assert [present(ceremony, custodians, recovery_shares, n) for n in (0, 3, 4)] == [1, 2, 3]
    with ceremony.key(ACTOR) as material:
        assert material.private_key.public_key() == original
        signature = material.private_key.sign(b"CS02b command", ec.ECDSA(hashes.SHA256()))
    original.verify(signature, b"CS02b command", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]
    assert ceremony.presented == 0  # the shares are dropped once the key has been used
    ceremony.close(ACTOR)
    recorded = [action for action, _ in actions(ra)]
    for step in ("custody.established", "pma.decided", "ceremony.opened", "ceremony.share_presented",
                 "ceremony.key_reconstructed", "ceremony.closed"):
        assert step in recorded
    assert audit.verify(ra.database).intact


def test_one_share_short_of_the_quorum_is_refused(ra: RegistrationAuthority, custodians: Custodians,
                                                  recovery_shares: list[IssuedShare]) -> None:
    ceremony = opened(ra, custodians)
    present(ceremony, custodians, recovery_shares, 0)
    present(ceremony, custodians, recovery_shares, 1)
    with refused("RC:CER02"), ceremony.key(ACTOR):
        pytest.fail("the key was handed out short of a quorum")
    assert ("ceremony.refused", '{"code":"RC:CER02",') in [(a, d[:19]) for a, d in actions(ra)]


def test_a_forged_share_is_refused(ra: RegistrationAuthority, custodians: Custodians,
                                   recovery_shares: list[IssuedShare]) -> None:
    """A share sealed correctly for the custodian's name and under their passphrase, but not the one they were
    given: it opens, and the custody's commitment tells it apart."""
    ceremony = opened(ra, custodians)
    victim = recovery_shares[2]
    with ra.database.session() as session:
        from smki.recovery.models import CustodianShare
        row = session.execute(select(CustodianShare).where(CustodianShare.appointment_id == victim.appointment_id)
                              ).scalar_one()
    forged = threshold.seal(threshold.Share(victim.share_index, bytes(32)), PASSPHRASES[2],
                            binding(row.custody_id, victim.appointment_id))
    with refused("RC:CER06"):
        ceremony.present(victim.appointment_id, PASSPHRASES[2], forged)
    with refused("RC:CER05"):  # someone else's share under this custodian's name does not even open
        ceremony.present(victim.appointment_id, PASSPHRASES[2], recovery_shares[1].sealed)
    with refused("RC:CER05"):
        ceremony.present(victim.appointment_id, "not the passphrase at all", victim.sealed)
    assert ceremony.presented == 0


def test_a_share_presented_twice_is_refused(ra: RegistrationAuthority, custodians: Custodians,
                                            recovery_shares: list[IssuedShare]) -> None:
    ceremony = opened(ra, custodians)
    present(ceremony, custodians, recovery_shares, 0)
    with refused("RC:CER04"):
        present(ceremony, custodians, recovery_shares, 0)
    # nor from another process attending the same ceremony: the database refuses it too
    other = CeremonySession(ra.database, ceremony.policy, ceremony.id, ceremony.custody_id, "recovery", "use",
                            ceremony.quorum, ceremony.generation)
    with refused("RC:CER04"):
        present(other, custodians, recovery_shares, 0)
    present(ceremony, custodians, recovery_shares, 1)
    with refused("RC:CER02"), ceremony.key(ACTOR):
        pass


def test_a_withdrawn_custodian_counts_for_nothing(ra: RegistrationAuthority, custodians: Custodians,
                                                  recovery_shares: list[IssuedShare]) -> None:
    custodians.builder.withdraw(custodians.members[4])
    ceremony = opened(ra, custodians)
    with refused("RC:CER03"):
        present(ceremony, custodians, recovery_shares, 4)
    with refused("RC:CER03"):  # nor can someone who is no custodian of this key present anything
        ceremony.present(custodians.pma.appointment_id or 0, PASSPHRASES[0], recovery_shares[0].sealed)


def test_no_ceremony_without_a_decision_of_the_pma(ra: RegistrationAuthority, custodians: Custodians,
                                                   recovery_shares: list[IssuedShare]) -> None:
    policy = ra.instance.policies.custody
    with refused("RC:CER01"):
        CeremonySession.open(ra.database, policy, key_name="recovery", decision_id=None, actor=ACTOR)
    contingency_decision = decide(ra, custodians, key="contingency")
    with refused("RC:CER01"):  # a decision about another key
        CeremonySession.open(ra.database, policy, key_name="recovery", decision_id=contingency_decision, actor=ACTOR)
    decision = decide(ra, custodians)
    CeremonySession.open(ra.database, policy, key_name="recovery", decision_id=decision, actor=ACTOR)
    with refused("RC:CER01"):  # one decision, one ceremony
        CeremonySession.open(ra.database, policy, key_name="recovery", decision_id=decision, actor=ACTOR)
    operator = ra.authenticate_token(custodians.operator.token)
    with refused("RC:CER00"):
        record_decision(ra.database, operator, key_name="recovery", purpose="use", reason="not mine to make")
    assert [a for a, _ in actions(ra)].count("ceremony.refused") == 3


def test_custodians_must_come_from_two_parties_and_match_the_policy(
        ra: RegistrationAuthority, custodians: Custodians) -> None:
    build, party_a = custodians.builder, custodians.party_a
    same_party = [Custodian(build.member(party_a, f"Solo {n}", "key_custodian", token=False).appointment_id or 0,
                            PASSPHRASES[0]) for n in range(5)]
    with refused("RC:CUS01") as caught:
        take_into_custody(ra.instance, "recovery", same_party, ACTOR)
    assert "1 Party" in caught.value.message
    with refused("RC:CUS01"):
        take_into_custody(ra.instance, "recovery", custodians.all()[:4], ACTOR)
    with refused("RC:CUS01"):  # the PMA member holds no Key Custodian appointment
        not_a_custodian = Custodian(custodians.pma.appointment_id or 0, PASSPHRASES[0])
        take_into_custody(ra.instance, "recovery", [*custodians.all()[:4], not_a_custodian], ACTOR)
    take_into_custody(ra.instance, "recovery", custodians.all(), ACTOR)
    with refused("RC:CUS02"):
        take_into_custody(ra.instance, "recovery", custodians.all(), ACTOR)


def test_resharing_when_a_custodian_leaves_keeps_the_key_and_retires_the_old_shares(
        ra: RegistrationAuthority, custodians: Custodians, recovery_shares: list[IssuedShare]) -> None:
    public = ra.instance.hierarchy.certificate("recovery").public_key()
    custodians.builder.withdraw(custodians.members[0])
    ceremony = opened(ra, custodians, purpose="reshare")
    for n in (1, 2, 3):
        present(ceremony, custodians, recovery_shares, n)
    remaining = [custodians.custodian(n) for n in (1, 2, 3, 4, 5)]
    new_shares = ceremony.reshare(remaining, ACTOR)
    ceremony.close(ACTOR)
    with ra.database.session() as session:
        now = status(session, "recovery")
    assert now is not None and now.generation == 2
    assert custodians.members[0].appointment_id not in [c[0] for c in now.custodians]
    # an old share is no share of the new custody; the new ones reconstruct the same key
    use = opened(ra, custodians)
    with refused("RC:CER05"):
        present(use, custodians, recovery_shares, 1)
    for issued, n in zip(new_shares[:3], (1, 2, 3), strict=True):
        use.present(issued.appointment_id, PASSPHRASES[n], issued.sealed)
    with use.key(ACTOR) as material:
        assert material.private_key.public_key() == public


def test_a_new_contingency_key_at_a_key_ceremony(ra: RegistrationAuthority, custodians: Custodians) -> None:
    old_wrapping_key = ra.instance.custody.get_secret(CONTINGENCY_WRAPPING_KEY)
    issued = take_into_custody(ra.instance, "contingency", custodians.all(), ACTOR)
    ceremony = opened(ra, custodians, key="contingency", purpose="new_key")
    with refused("RC:CER09"), ceremony.key(ACTOR):  # opened for a new key, not to use the old one
        pass
    for n in (0, 1, 4):
        ceremony.present(issued[n].appointment_id, PASSPHRASES[n], issued[n].sealed)
    material, new_shares = ceremony.new_key(custodians.all(), ACTOR)
    assert material.wrapping_key is not None and material.wrapping_key != old_wrapping_key
    assert len(new_shares) == 5
    with ra.database.session() as session:
        now = status(session, "contingency")
    assert now is not None and now.generation == 2
    assert now.public_key == material.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_the_key_is_never_written_anywhere_in_clear(ra: RegistrationAuthority, custodians: Custodians,
                                                    instance: Instance, tmp_path: Path) -> None:
    """After taking both keys into custody and a full ceremony, no file under the test's folder (the instance
    and, on SQLite, the database) nor any custody row holds the private key, the wrapping key or a share."""
    secrets_in_clear = [private_key_material(instance.keystore.signer(RECOVERY_KEY)),
                        instance.keystore.signer(RECOVERY_KEY).private_numbers().private_value.to_bytes(32, "big"),
                        instance.custody.get_secret(CONTINGENCY_WRAPPING_KEY)]
    recovery = take_into_custody(instance, "recovery", custodians.all(), ACTOR)
    take_into_custody(instance, "contingency", custodians.all(), ACTOR)
    ceremony = opened(ra, custodians)
    for n in range(3):
        present(ceremony, custodians, recovery, n)
    with ceremony.key(ACTOR) as material:
        secrets_in_clear.append(private_key_material(material.private_key))
    ceremony.close(ACTOR)
    for n in range(3):
        with ra.database.session() as session:
            share = threshold.open_sealed(recovery[n].sealed, PASSPHRASES[n],
                                          binding(status_custody_id(session), recovery[n].appointment_id))
        secrets_in_clear.append(share.value)
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert files
    for path in files:
        content = path.read_bytes()
        assert not any(secret in content for secret in secrets_in_clear), path
    with ra.database.session() as session:
        for table in ("rc_custody", "rc_custodian_share", "rc_ceremony", "rc_presentation", "ra_audit"):
            for row in session.execute(text(f"SELECT * FROM {table}")):
                dumped = repr(tuple(row)).encode()
                assert not any(secret.hex().encode() in dumped or secret in dumped for secret in secrets_in_clear)


def status_custody_id(session: Session) -> int:
    from smki.recovery.models import Custody
    return session.execute(select(Custody.id).where(Custody.key_name == "recovery")).scalar_one()
