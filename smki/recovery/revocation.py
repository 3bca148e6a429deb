"""A CA certificate revoked and the list that names it published at once (SEC Appendix L: the ARL is
published as soon as the Issuing OCA is revoked, not at the publisher's next turn).

Here rather than in :mod:`smki.ca_rotation` because signing and storing a revocation list is the
publication layer's (:mod:`smki.publication`), which sits above the CA rotation and below custody.
"""

from __future__ import annotations

import datetime as dt

from repository.crls import PublishedList
from smki.ca_rotation import revoke_ca_certificate as revoke_in_repository
from smki.core.errors import ConfigurationError
from smki.instance import Instance
from smki.publication import publish

NO_LIST = "CA:ROT4"


def revoke_ca_certificate(instance: Instance, name: str, *, reason: str, actor: str,
                          now: dt.datetime | None = None, serial: str | None = None) -> PublishedList:
    """Revoke one generation of ``name`` (the current one unless ``serial`` names another, for example
    ``Rotation.old_serial`` after :func:`smki.ca_rotation.new_issuing_oca`) and publish the list that names it:
    the ARL, signed by the current Root OCA, for an OCA certificate; the CRL for the Recovery certificate."""
    if name in ("root_dca", "issuing_dca"):
        raise ConfigurationError(NO_LIST, f"a revoked {name} certificate goes on no published list "
                                 "(policies/repository.yaml revocation_lists); devices learn of it by a new "
                                 "Root DCA, outside this procedure")
    revocation = revoke_in_repository(instance, name, reason=reason, actor=actor, now=now, serial=serial)
    assert revocation.revocation_list is not None  # OCA certificates: the ARL; the Recovery certificate: the CRL
    return publish(instance, revocation.revocation_list, now=now)
