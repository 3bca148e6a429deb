"""TEST MATERIAL: Organisation key pairs of demo and drill Parties, held so that the sandbox can sign (and, as
the ACB, MAC) commands as those Parties, as DCC Boxed holds its test Parties' keys.

Only Parties that ``policies/estate.yaml`` names under ``test_parties`` (``smki demo``'s Parties, drill
Parties) may have keys here: :meth:`TestKeyStore.hold` refuses any other with ``ES:KEY1``, so a real Party's
private key never enters the sandbox; a real Party keeps its own keys and submits CSRs like any subscriber.

:meth:`TestKeyStore.issue_test_credentials` gives every test Party the Organisation Certificates the estate's
cells need (per ``device_types`` owners and cells, and the DCC's roles under ``dcc_roles``): a fresh key pair
per cell kind, its certificate issued through the one issuance path and lodged in the Repository through the
RA, and the private key stored, all in one transaction per Party.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from repository.certificates import normalise_serial, serial_text
from smki.ca.builder import CertificateRequest
from smki.core.eui64 import Eui64
from smki.estate.models import EstateTestKey
from smki.estate.plan import CELL_USAGE_CODE, EstateError
from smki.instance import Instance
from smki.issuance import IssuanceService, IssuedCertificate, NotIssued
from smki.ra import registry
from smki.ra.lodging import issued_lodging

NOT_TEST_MATERIAL = "ES:KEY1"
NO_TEST_KEY = "ES:KEY2"
CHANNEL = "estate-test-material"


@dataclass(frozen=True)
class Wanted:
    """One Organisation Certificate a test Party needs: its EUI, role, key usage and cell usage."""

    party_id: int
    eui: str
    role_ou: str
    usage: str
    cell_usage: str


class TestKeyStore:
    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.policy = instance.policies.estate

    def is_test_party(self, session: Session, party_id: int) -> bool:
        return registry.organisation(session, party_id).name in self.policy.test_parties

    def hold(self, session: Session, party_id: int, *, role: int, usage: str, cell_usage: int, eui: str,
             serial: str, key: ec.EllipticCurvePrivateKey) -> None:
        """Store a test Party's private key with its certificate's serial, in the caller's transaction."""
        if not self.is_test_party(session, party_id):
            name = registry.organisation(session, party_id).name
            raise EstateError(NOT_TEST_MATERIAL, f"{name} is not a demo or drill Party (policies/estate.yaml "
                              "test_parties): the sandbox never holds a real Party's private keys. The Party keeps "
                              "its own keys and submits CSRs.")
        session.execute(insert(EstateTestKey).values(
            party_id=party_id, role=role, key_usage=usage, cell_usage=cell_usage, subject_eui=eui, serial=serial,
            private_key=key.private_numbers().private_value.to_bytes(32, "big"), created_at=dt.datetime.now(dt.UTC)))

    def private_key(self, serial: str) -> ec.EllipticCurvePrivateKey:
        """The test key of the certificate with ``serial`` (for the command sender)."""
        with self.instance.database.session() as session:
            held = session.scalar(select(EstateTestKey.private_key).where(EstateTestKey.serial == self._serial(serial)))
        if held is None:
            raise EstateError(NO_TEST_KEY, f"the sandbox holds no test key for certificate {serial}; only demo and "
                              "drill Parties' keys are held (`smki estate test-credentials`)")
        return ec.derive_private_key(int.from_bytes(held, "big"), ec.SECP256R1())

    @staticmethod
    def _serial(text: str) -> str:
        try:
            return normalise_serial(text)
        except ValueError as error:
            raise EstateError(NO_TEST_KEY, f"{text!r} is not a certificate serial number") from error

    # --- issuing the test Parties' certificates -------------------------------------------------------

    def wanted(self) -> list[Wanted]:
        """Every (Party, role, usage, cell usage) of the test Parties that the estate's cells need and the
        store does not hold a key for yet."""
        roles = self.instance.policies.roles
        dcc_ids = self.instance.policies.environment.dcc_entity_identifiers
        cells: set[tuple[str, str, str]] = {(c.role, c.usage, c.cell_usage)
                                            for t in self.policy.device_types.values() for c in t.cells}
        out: list[Wanted] = []
        with self.instance.database.session() as session:
            held = {(k.subject_eui, k.role, k.key_usage, k.cell_usage)
                    for k in session.execute(select(EstateTestKey)).scalars()}
            by_eui = {u.eui64: u for u in registry.user_ids_in_roles(session, ["DCC"])}
            for role, key in self.policy.dcc_roles.items():
                eui = dcc_ids[key].hex
                if eui in by_eui and self.is_test_party(session, by_eui[eui].organisation_id):
                    out += self._for(by_eui[eui].organisation_id, eui, role, cells, held)
            for device_type in self.policy.device_types.values():
                for role, user_roles in device_type.owners.items():
                    for user_id in registry.user_ids_in_roles(session, user_roles):
                        if self.is_test_party(session, user_id.organisation_id):
                            out += self._for(user_id.organisation_id, user_id.eui64, role, cells, held)
        unique: dict[tuple[str, str, str, str], Wanted] = {}
        for item in out:
            unique.setdefault((item.eui, item.role_ou, item.usage, item.cell_usage), item)
        assert all(roles.by_ou(w.role_ou) is not None for w in unique.values())
        return list(unique.values())

    def _for(self, party_id: int, eui: str, role: str, cells: set[tuple[str, str, str]],
             held: set[tuple[str, int, str, int]]) -> list[Wanted]:
        code = self.instance.policies.roles.by_name(role)
        assert code is not None
        return [Wanted(party_id, eui, code.ou, usage, cell_usage)
                for (cell_role, usage, cell_usage) in sorted(cells)
                if cell_role == role and (eui, code.code, usage, CELL_USAGE_CODE[cell_usage]) not in held]

    def issue_test_credentials(self, requested_by: str = "smki estate test-credentials") -> list[Wanted]:
        """Issue, lodge and hold what :meth:`wanted` lists, one transaction per Party; returns what was made."""
        issuance = IssuanceService(self.instance.ca, self.instance.database, self.instance.policies)
        lodging = issued_lodging(self.instance.database, "estate-test-material")
        wanted = self.wanted()
        by_party: dict[int, list[Wanted]] = {}
        for item in wanted:
            by_party.setdefault(item.party_id, []).append(item)
        for party_id, items in by_party.items():
            keys = [ec.generate_private_key(ec.SECP256R1()) for _ in items]
            requests = [CertificateRequest("organisation", key.public_key(), key_usage=item.usage,
                                           remote_party_role=item.role_ou, entity_identifier=Eui64.parse(item.eui))
                        for key, item in zip(keys, items, strict=True)]
            signed = issuance.sign(requests, channel=CHANNEL, requested_by=requested_by)
            with self.instance.database.session() as session:
                outcomes = issuance.record(session, signed)
                refused = next((o for o in outcomes if isinstance(o, NotIssued)), None)
                if refused is not None:
                    raise refused.error
                issued = [o for o in outcomes if isinstance(o, IssuedCertificate)]
                lodging.within(session, [(certificate, False) for certificate in issued])
                for key, item, certificate in zip(keys, items, issued, strict=True):
                    self.hold(session, party_id, role=int(item.role_ou, 16), usage=item.usage,
                              cell_usage=CELL_USAGE_CODE[item.cell_usage], eui=item.eui,
                              serial=serial_text(certificate.certificate.serial_number),
                              key=key)
        return wanted
