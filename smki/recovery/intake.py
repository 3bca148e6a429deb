"""Taking the keys ``smki init`` made into custody, without touching the hierarchy: the Recovery key and the
Contingency key with its symmetric wrapping key are read from the instance's key stores and sealed into a
custody generation; the certificates (the Recovery certificate, the Root OCA with its wrapped Contingency
key) stay exactly as they are, because the keys do.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from smki.bootstrap import CONTINGENCY_KEY, CONTINGENCY_WRAPPING_KEY, RECOVERY_KEY
from smki.instance import Instance
from smki.ra import audit
from smki.recovery.custody import Custodian, IssuedShare, KeyMaterial, active_custody, check_key_name, establish
from smki.recovery.errors import CUSTODY_EXISTS, CustodyRefused


def key_material(instance: Instance, key_name: str) -> KeyMaterial:
    """The key ``smki init`` made, as it is in the instance's key stores."""
    check_key_name(key_name)
    if key_name == "recovery":
        return KeyMaterial(key_name, instance.keystore.signer(RECOVERY_KEY))
    return KeyMaterial(key_name, instance.keystore.signer(CONTINGENCY_KEY),
                       instance.custody.get_secret(CONTINGENCY_WRAPPING_KEY))


def take_into_custody(instance: Instance, key_name: str, custodians: Sequence[Custodian],
                      actor: str) -> list[IssuedShare]:
    """Seal the instance's ``key_name`` key into its first custody (RC:CUS02 if it is in custody already)."""
    material = key_material(instance, key_name)

    def work(session: Session) -> list[IssuedShare]:
        if active_custody(session, key_name) is not None:
            raise CustodyRefused(CUSTODY_EXISTS, f"the {key_name} key is in custody already; a custodian leaving "
                                 "is a re-sharing ceremony, a new key a new key ceremony.")
        return establish(session, instance.policies.custody, material, custodians, actor=actor,
                         reason="taken into custody from the instance's key store")
    return audit.audited(instance.database, work)
