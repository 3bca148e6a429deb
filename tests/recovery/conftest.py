"""Custody fixtures: two Parties, five Key Custodians among them, a PMA member, an RA operator."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from smki.instance import Instance
from smki.ra.population import Member, PopulationBuilder
from smki.ra.service import RegistrationAuthority
from smki.recovery.custody import Custodian

PASSPHRASES = [f"custodian passphrase number {n}" for n in range(6)]


@dataclass
class Custodians:
    builder: PopulationBuilder
    party_a: int
    party_b: int
    members: list[Member]   # five custodians: three of Party A, two of Party B
    spare: Member           # a sixth, of Party B, for re-sharing
    pma: Member
    operator: Member
    sro_a: Member

    def custodian(self, n: int) -> Custodian:
        member = self.members[n] if n < 5 else self.spare
        assert member.appointment_id is not None
        return Custodian(member.appointment_id, PASSPHRASES[n])

    def all(self) -> list[Custodian]:
        return [self.custodian(n) for n in range(5)]


@pytest.fixture
def ra(instance: Instance) -> RegistrationAuthority:
    return RegistrationAuthority(instance)


@pytest.fixture
def custodians(ra: RegistrationAuthority) -> Custodians:
    build = PopulationBuilder(ra)
    party_a = build.party("Data Communications Company", "dcc")
    party_b = build.party("Alpha Energy Supply Ltd", "large_supplier")
    members = [build.member(party_a, f"Custodian A{n}", "key_custodian", token=False) for n in range(3)]
    members += [build.member(party_b, f"Custodian B{n}", "key_custodian", token=False) for n in range(2)]
    return Custodians(build, party_a, party_b, members,
                      build.member(party_b, "Custodian B-spare", "key_custodian", token=False),
                      build.member(None, "Dr Alan Kerr", "pma"), build.member(None, "Rita Vance", "ra_operator"),
                      build.member(party_a, "Sara SRO", "sro"))
