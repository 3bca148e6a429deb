"""An RA population whose Parties hold the Organisation Certificates an estate's cells are loaded with."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select

from smki.core.eui64 import Eui64
from smki.csrgen import organisation_csr
from smki.estate.jobs import EstateJobs
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.ra import registry
from smki.ra.lodging import issued_lodging
from smki.ra.population import PopulationBuilder
from smki.ra.service import RegistrationAuthority

SUPPLIER = ("02", ["digitalSignature", "keyAgreement", "keyAgreement"])   # the second KA: prepayment top-up
NETWORK_OPERATOR = ("03", ["digitalSignature", "keyAgreement"])
DCC_CERTIFICATES = {"access_control_broker": ("04", ["digitalSignature", "keyAgreement"]),
                    "wan_provider": ("06", ["digitalSignature"]), "transitional_cos": ("05", ["digitalSignature"])}


@dataclass
class Population:
    parties: dict[str, int]              # name -> RA organisation id
    euis: dict[tuple[str, str], str]     # (party name, User Role) -> EUI-64 hex
    issued: dict[tuple[str, str, str], list[bytes]]   # (EUI, role OU, usage) -> DER, oldest first


def issue_organisation(instance: Instance, eui: str, role: str, usages: list[str],
                       issued: dict[tuple[str, str, str], list[bytes]]) -> None:
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    lodge = issued_lodging(instance.database, "test")
    for usage in usages:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = organisation_csr(key, role, Eui64.parse(eui), usage).public_bytes(Encoding.PEM)
        certificate = service.issue_from_csr(csr, channel="operator", requested_by="test")
        lodge([(certificate, False)])
        issued.setdefault((eui, role, usage), []).append(certificate.der)


def build_population(instance: Instance) -> Population:
    build = PopulationBuilder(RegistrationAuthority(instance), actor="test")
    dcc_ids = instance.policies.environment.dcc_entity_identifiers
    parties = {"DCC": build.party("DCC (test)", "dcc", [("DCC", eui.hex) for eui in dcc_ids.values()])}
    for name, category, roles in (("Volt Supply", "large_supplier", ["IS", "GS"]),
                                  ("Spark Energy", "small_supplier", ["IS"]),
                                  ("Midland Wires", "electricity_network", ["ED"]),
                                  ("Fen Gas Pipes", "gas_network", ["GT"])):
        parties[name] = build.party(name, category, [(role, None) for role in roles])
    euis: dict[tuple[str, str], str] = {}
    with instance.database.session() as session:
        for name, party in parties.items():
            for user_id in registry.user_ids(session, party):
                euis[(name, user_id.user_role)] = user_id.eui64
    issued: dict[tuple[str, str, str], list[bytes]] = {}
    for key, (role, usages) in DCC_CERTIFICATES.items():
        issue_organisation(instance, dcc_ids[key].hex, role, usages, issued)
    for (_name, user_role), eui in euis.items():
        if user_role in ("IS", "GS"):
            issue_organisation(instance, eui, *SUPPLIER, issued)
        elif user_role in ("ED", "GT"):
            issue_organisation(instance, eui, *NETWORK_OPERATOR, issued)
    return Population(parties, euis, issued)


@pytest.fixture
def population(instance: Instance) -> Population:
    return build_population(instance)


@pytest.fixture
def jobs(instance: Instance, tmp_path) -> EstateJobs:
    """The estate's jobs on a queue of the test's own, run in the test's process."""
    return EstateJobs.build(instance, f"sqlite:///{tmp_path / 'estate-queue.db'}")


def count(instance: Instance, model) -> int:  # type: ignore[no-untyped-def]
    with instance.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)
