"""What a compromise exposes on the devices, read from their trust-anchor cells.

A cell is exposed when the certificate it holds is one of the compromised key's (its serial among the
compromised serials: an Organisation Certificate, the Recovery certificate, an OCA certificate), or was signed
by a compromised CA key (its Authority Key Identifier among the compromised Subject Key Identifiers). A device
is affected while any of its cells is exposed. The check reads the estate's cells as the devices hold them, so
it answers for what the devices would trust, not for what the commands said.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import select

from repository.certificates import normalise_serial, serial_text
from smki.core.policyfiles.recovery import Scenario
from smki.drills.world import Population, World
from smki.estate import faults
from smki.estate.models import EstateAnchor, EstateDevice, EstateTestKey
from smki.estate.plan import CELL_USAGE_CODE

CELL_USAGE_NAME = {code: name for name, code in CELL_USAGE_CODE.items()}
ROLE_OF_KEY = {"acb": "accessControlBroker", "wan_provider": "wanProvider", "transitional_cos": "transitionalCoS"}
PAGE = 2000


@dataclass(frozen=True)
class Exposed:
    device_id: str
    device_type: str
    party: str | None
    faults: list[str]
    cells: list[str]     # "supplier digitalSignature", "supplier keyAgreement (top-up)", ...


def _ski(certificate: x509.Certificate) -> str:
    return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex().upper()


def _aki(der: bytes) -> str | None:
    try:
        value = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier).value.key_identifier
    except (x509.ExtensionNotFound, ValueError):
        return None
    return value.hex().upper() if value else None


def compromised(world: World, scenario: Scenario) -> dict[str, object]:
    """The compromised key as the drill record names it: key, role, Party, serials (and SKIs of CA keys), and for
    Organisation keys each certificate's place (Entity Identifier, role, usage, cell usage, Party)."""
    spec = scenario.compromised
    instance = world.instance
    population = world.population
    hierarchy = instance.hierarchy
    if spec.key in ("organisation", *ROLE_OF_KEY):
        party = population.party(spec.party or "dcc")
        role = instance.policies.roles.by_name(spec.role or ROLE_OF_KEY[spec.key])
        assert role is not None
        with instance.database.session() as session:
            rows = session.execute(select(EstateTestKey).where(
                EstateTestKey.party_id == party["id"], EstateTestKey.role == role.code,
                EstateTestKey.key_usage.in_(spec.usages)).order_by(EstateTestKey.id)).scalars().all()
            certificates = [{"serial": row.serial, "subject_eui": row.subject_eui, "role": role.name,
                             "role_code": role.code, "key_usage": row.key_usage,
                             "cell_usage": CELL_USAGE_NAME[row.cell_usage], "party_id": row.party_id}
                            for row in rows]
        return {"key": spec.key, "role": role.name, "party": party["name"], "party_id": party["id"],
                "serials": [c["serial"] for c in certificates], "skis": [], "certificates": certificates}
    names = {"issuing_oca": ["issuing_oca"], "root_oca": ["root_oca", "issuing_oca"],
             "contingency": ["root_oca"], "recovery": ["recovery"]}[spec.key]
    certificates = []
    for name in names:
        certificate = hierarchy.certificate(name)
        certificates.append({"name": name, "serial": serial_text(certificate.serial_number),
                             "subject_key_identifier": _ski(certificate)})
    # A CA key signed what devices hold (the Organisation Certificates under the Issuing OCA); the Recovery and
    # Contingency keys signed nothing a device holds: their certificate (the root carrying the wrapped
    # Contingency key) is what is exposed.
    skis = [c["subject_key_identifier"] for c in certificates if c["name"] != "recovery"] \
        if spec.key in ("issuing_oca", "root_oca") else []
    return {"key": spec.key, "role": None, "party": None, "party_id": None,
            "serials": [c["serial"] for c in certificates], "skis": skis, "certificates": certificates}


def cell_name(role_names: dict[int, str], role: int, usage: str, cell_usage: int) -> str:
    return f"{role_names.get(role, str(role))} {usage}" + (" (top-up)" if cell_usage == 1 else "")


def scan(world: World, compromise: dict[str, object], device_ids: Iterable[str] | None = None) -> Iterator[Exposed]:
    """Every device (of ``device_ids``, or the whole estate) with a cell still exposed to the compromise."""
    serials = {normalise_serial(str(s)) for s in compromise["serials"]}   # type: ignore[attr-defined]
    skis = set(compromise["skis"])   # type: ignore[call-overload]
    instance = world.instance
    role_names = {role.code: role.name for role in instance.policies.roles.roles}
    population = world.population
    wanted = sorted(set(device_ids)) if device_ids is not None else None
    with instance.database.session() as session:
        exposed_anchors = {row.id for row in session.execute(
            select(EstateAnchor.id, EstateAnchor.serial, EstateAnchor.der))
            if normalise_serial(row.serial) in serials or (skis and _aki(row.der) in skis)}
    columns = (EstateDevice.device_id, EstateDevice.device_type, EstateDevice.supplier_party_id,
               EstateDevice.network_operator_party_id, EstateDevice.faults, EstateDevice.cells)
    last, offset = "", 0
    while True:
        with instance.database.session() as session:
            if wanted is not None:   # the devices asked about, a page of them at a time (bounded IN lists)
                page = wanted[offset:offset + PAGE]
                offset += PAGE
                if not page:
                    return
                rows = session.execute(select(*columns).where(EstateDevice.device_id.in_(page))
                                       .order_by(EstateDevice.device_id)).all()
            else:
                rows = session.execute(select(*columns).where(EstateDevice.device_id > last)
                                       .order_by(EstateDevice.device_id).limit(PAGE)).all()
                if not rows:
                    return
                last = rows[-1].device_id
        for row in rows:
            cells = [cell_name(role_names, role, usage, cell_usage)
                     for role, usage, cell_usage, anchor, _state in json.loads(row.cells) if anchor in exposed_anchors]
            if cells:
                yield Exposed(row.device_id, row.device_type, owner(population, compromise, row),
                              faults.names(row.faults), cells)


def owner(population: Population, compromise: dict[str, object], row: object) -> str | None:
    """The Party a device's exposure is reported under: the compromised key's Party for an Organisation key,
    otherwise the device's supplier (its network operator, or the DCC for a comms hub)."""
    if compromise.get("party"):
        return str(compromise["party"])
    party_id = getattr(row, "supplier_party_id", None) or getattr(row, "network_operator_party_id", None)
    return population.party_name(party_id) if party_id is not None else population.party("dcc")["name"]


def device_count(world: World) -> dict[str, int]:
    from sqlalchemy import func
    with world.instance.database.session() as session:
        return {str(t): int(n) for t, n in session.execute(select(EstateDevice.device_type, func.count())
                                                            .group_by(EstateDevice.device_type)).all()}
