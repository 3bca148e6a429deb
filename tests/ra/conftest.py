"""RA fixtures: a registration authority over a fresh instance, and a small population of Parties,
people and credentials covering every kind of caller the authorisation matrix needs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smki.core.eui64 import Eui64
from smki.csrgen import device_csr, organisation_csr
from smki.instance import Instance
from smki.ra.population import Member, PopulationBuilder
from smki.ra.service import RegistrationAuthority

SUPPLIER_A_IS = "90B3D51F30A00001"
SUPPLIER_A_GS = "90B3D51F30A00002"
SUPPLIER_B_IS = "90B3D51F30B00001"
NETWORK_ED = "90B3D51F30C00001"
OTHER_OU = "90B3D51F30D00001"


@dataclass
class Population:
    dcc: int
    supplier_a: int
    supplier_b: int
    network: int
    other_user: int
    manufacturer: int
    aro_a: Member               # the correct ARO: organisation + device scopes, acts for supplier A
    aro_a_org_only: Member      # scoped to Organisation certificates only
    aro_a_device_only: Member   # scoped to Device certificates only
    aro_a_withdrawn: Member
    sro_a: Member               # SRO of supplier A, not an ARO
    aro_b: Member               # ARO of another Party (supplier B)
    aro_dcc: Member
    aro_network: Member
    manufacturer_contact: Member
    operator: Member


@pytest.fixture
def ra(instance: Instance) -> RegistrationAuthority:
    return RegistrationAuthority(instance)


@pytest.fixture
def population(ra: RegistrationAuthority) -> Population:
    build = PopulationBuilder(ra)
    dcc_ids = ra.instance.policies.environment.dcc_entity_identifiers
    dcc = build.party("Data Communications Company", "dcc", [("DCC", eui.hex) for eui in dcc_ids.values()])
    supplier_a = build.party("Alpha Energy Supply Ltd", "large_supplier",
                             [("IS", SUPPLIER_A_IS), ("GS", SUPPLIER_A_GS)])
    supplier_b = build.party("Beta Power Ltd", "small_supplier", [("IS", SUPPLIER_B_IS)])
    network = build.party("Gamma Distribution plc", "electricity_network", [("ED", NETWORK_ED)])
    other_user = build.party("Delta Energy Services Ltd", "other", [("OU", OTHER_OU)])
    manufacturer = build.manufacturer("Epsilon Meters Ltd")
    both = ("organisation", "device")
    population = Population(
        dcc=dcc, supplier_a=supplier_a, supplier_b=supplier_b, network=network, other_user=other_user,
        manufacturer=manufacturer,
        aro_a=build.member(supplier_a, "Ada ARO", "aro", scopes=both),
        aro_a_org_only=build.member(supplier_a, "Olive Org-Only", "aro", scopes=("organisation",)),
        aro_a_device_only=build.member(supplier_a, "Dev Device-Only", "aro", scopes=("device",)),
        aro_a_withdrawn=build.member(supplier_a, "Walter Withdrawn", "aro", scopes=both),
        sro_a=build.member(supplier_a, "Sara SRO", "sro"),
        aro_b=build.member(supplier_b, "Bob Other-Party", "aro", scopes=both),
        aro_dcc=build.member(dcc, "Dora DCC", "aro", scopes=both),
        aro_network=build.member(network, "Ned Network", "aro", scopes=both),
        manufacturer_contact=build.member(manufacturer, "Manny Manufacturer", None),
        operator=build.member(None, "Rita RA-Operator", "ra_operator"),
    )
    build.withdraw(population.aro_a_withdrawn)
    return population


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def org_csr_pem(eui: str, role_ou: str = "02", usage: str = "digitalSignature") -> str:
    csr = organisation_csr(new_key(), role_ou, Eui64.parse(eui), usage)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def device_csr_pem(device_id: str, usage: str = "keyAgreement") -> str:
    return device_csr(new_key(), Eui64.parse(device_id), usage).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def app(ra: RegistrationAuthority):  # type: ignore[no-untyped-def]
    from smki.web import create_app

    application = create_app(ra.instance)
    application.config["TESTING"] = True
    application.extensions["smki_ra"] = ra
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


def auth(member: Member | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {member.token}"} if member and member.token else {}


@pytest.fixture
def live_server(app):  # type: ignore[no-untyped-def]
    """The application served by werkzeug on 127.0.0.1 and a free port, in a thread."""
    from tests.conftest import serving

    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"
