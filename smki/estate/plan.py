"""The plan of one estate run: which type each device is, who owns it, and which certificate each of its
trust-anchor cells is loaded with at installation.

Worked out once, when the run is created, from what the sandbox holds: the Root OCA and Recovery certificates
of its hierarchy, the DCC's Organisation Certificates (ACB, WAN provider, transitional CoS) and the owning
Parties' (suppliers, network operators: the RA's Parties holding the User Roles ``policies/estate.yaml``
names) as the Repository holds them. Every chunk of the run follows the same plan, so a chunk built twice (a
retry, a resumed run) builds the same devices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from repository.certificates import serial_text
from repository.store import CertificateRecord, CertificateRepository
from smki.core.errors import SmkiError
from smki.core.policyfiles.estate import HIERARCHY_ROLES, OWNER_ROLES, EstatePolicy, TrustAnchorCell
from smki.estate.models import EstateAnchor, EstateTestKey
from smki.instance import Instance
from smki.ra import registry

NO_CERTIFICATE = "ES:PLAN1"
NO_OWNER = "ES:PLAN2"
BAD_MIX = "ES:MIX1"
REPOSITORY_USAGE = {"digitalSignature": "DS", "keyAgreement": "KA"}
CELL_USAGE_CODE = {"management": 0, "prePaymentTopUp": 1}
HIERARCHY_CERTIFICATE = {"root": "root_oca", "recovery": "recovery"}


class EstateError(SmkiError):
    """The estate cannot do what was asked; nothing was changed."""


def parse_mix(text: str | None, policy: EstatePolicy) -> dict[str, int]:
    """``ESME=5,GSME=4,CHF=1`` or ``ESME,CHF`` (equal shares) to weights; none: the policy's own weights."""
    known = policy.device_types
    if not text:
        mix = {name: t.weight for name, t in known.items() if t.weight > 0}
    else:
        mix = {}
        for part in (p.strip() for p in text.split(",")):
            name, _, weight = part.partition("=")
            name = name.strip()
            if name not in known:
                raise EstateError(BAD_MIX, f"unknown device type {name!r} in --types: expected one of "
                                  f"{', '.join(known)} (policies/estate.yaml device_types)", field="types")
            if weight and not (weight.strip().isdigit() and int(weight) >= 0):
                raise EstateError(BAD_MIX, f"the share of {name} in --types must be a whole number, such as "
                                  f"{name}=5, not {weight!r}", field="types")
            mix[name] = int(weight) if weight else 1
    if not any(mix.values()):
        raise EstateError(BAD_MIX, "every device type has a share of 0: give at least one a share above 0",
                          field="types")
    return {name: weight for name, weight in mix.items() if weight > 0}


@dataclass
class Anchor:
    """A certificate to place in cells, before it has its row in ``estate_anchor``."""

    certificate: x509.Certificate
    der: bytes
    role: int
    key_usage: str
    subject_eui: str | None
    party_id: int | None

    @property
    def key(self) -> tuple[str, str]:
        return (serial_text(self.certificate.serial_number), self.certificate.issuer.rfc4514_string())


@dataclass
class TypePlan:
    certificates: list[str]
    cells: list[list]                                   # [role code, key usage, cell usage code, source]
    counters: list[int]                                 # the roles with an anti-replay counter
    common: list[Anchor | None]                         # per cell; None for an owner's cell (or an empty cell)
    owners: dict[str, list[tuple[int, list[Anchor | None]]]] = field(default_factory=dict)


class Planner:
    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.policy = instance.policies.estate
        self.roles = instance.policies.roles
        self.repository = CertificateRepository(instance.database)
        self._found: dict[tuple[str, int, str], list[CertificateRecord]] = {}

    def plan(self, mix: Mapping[str, int]) -> dict[str, TypePlan]:
        """Per type in the mix, its cells and the anchors to load in them; refuses (nothing stored yet) when a
        cell that must be filled has no certificate, or a type has no Party to own it."""
        return {name: self._type_plan(name) for name in mix}

    def _role_code(self, name: str) -> int:
        role = self.roles.by_name(name)
        assert role is not None  # the policy file was checked against roles.yaml
        return role.code

    def _type_plan(self, name: str) -> TypePlan:
        device_type = self.policy.device_types[name]
        cells = [[self._role_code(c.role), c.usage, CELL_USAGE_CODE[c.cell_usage],
                  c.role if c.role in OWNER_ROLES else "common"] for c in device_type.cells]
        common = [None if c.role in OWNER_ROLES else self._common_anchor(name, c) for c in device_type.cells]
        counters = sorted({self._role_code(c.role) for c in device_type.cells if c.role != "root"})
        plan = TypePlan(list(device_type.certificates), cells, counters, common)
        for role, user_roles in device_type.owners.items():
            own_cells = [c for c in device_type.cells if c.role == role]
            if not own_cells:
                continue
            candidates = self._owners(name, role, user_roles, device_type.cells)
            plan.owners[role] = candidates
        return plan

    def _common_anchor(self, type_name: str, cell: TrustAnchorCell) -> Anchor | None:
        if cell.role in HIERARCHY_ROLES:
            certificate = self.instance.hierarchy.certificate(HIERARCHY_CERTIFICATE[cell.role])
            return Anchor(certificate, certificate.public_bytes(serialization.Encoding.DER),
                          self._role_code(cell.role), cell.usage, None, None)
        key = self.policy.dcc_roles[cell.role]
        eui = self.instance.policies.environment.dcc_entity_identifiers[key].hex
        held = self._test_material(eui, self._role_code(cell.role), cell)
        if held is not None:
            return self._anchor(held, cell, None)
        found = self._organisation_certificates(eui, self._role_code(cell.role), cell.usage)
        if found:
            return self._anchor(found[0], cell, None)
        if self.policy.require_every_cell:
            raise EstateError(NO_CERTIFICATE, f"{type_name} devices hold the {cell.role} {cell.usage} cell, but the "
                              f"Repository holds no issued {cell.role} Organisation Certificate for the DCC's "
                              f"{key} identifier {eui} with that key usage. Issue and lodge one, or set "
                              "require_every_cell: false in policies/estate.yaml to install such cells empty.")
        return None

    def _owners(self, type_name: str, role: str, user_roles: tuple[str, ...],
                cells: tuple[TrustAnchorCell, ...]) -> list[tuple[int, list[Anchor | None]]]:
        with self.instance.database.session() as session:
            identifiers = [(u.organisation_id, u.eui64) for u in registry.user_ids_in_roles(session, user_roles)]
        owners: list[tuple[int, list[Anchor | None]]] = []
        lacking: list[str] = []
        role_code = self._role_code(role)
        for party_id, eui in identifiers:
            if any(existing == party_id for existing, _ in owners):
                continue
            anchors: list[Anchor | None] = []
            for cell in cells:
                if cell.role != role:
                    anchors.append(None)
                    continue
                held = self._test_material(eui, role_code, cell)
                if held is not None:
                    anchors.append(self._anchor(held, cell, party_id))
                    continue
                found = self._organisation_certificates(eui, role_code, cell.usage)
                # A supplier's prepayment top-up cell takes its second key-agreement certificate when it has
                # one (GBCS: a separate KA certificate for top-up), else its only one.
                pick = 1 if cell.cell_usage == "prePaymentTopUp" and len(found) > 1 else 0
                anchors.append(self._anchor(found[pick], cell, party_id) if found else None)
            if all(a is not None for a, c in zip(anchors, cells, strict=True) if c.role == role):
                owners.append((party_id, anchors))
            else:
                lacking.append(eui)
        if not owners:
            lack = f" ({len(lacking)} Parties hold those User Roles but lack a certificate)" if lacking else ""
            raise EstateError(NO_OWNER, f"no Party can own {type_name} devices as {role}: none holding the User "
                              f"Role {' or '.join(user_roles)} has an issued {role} Organisation Certificate in "
                              f"the Repository for every {role} cell{lack}. Register such a Party and have its "
                              "Organisation Certificates issued, or change owners in policies/estate.yaml.")
        return owners

    def _test_material(self, eui: str, role: int, cell: TrustAnchorCell) -> CertificateRecord | None:
        """The certificate of the newest test key held for exactly this cell kind (smki.estate.testkeys), when
        it is still in use: then the cell holds the certificate whose private key the sandbox can sign with."""
        with self.instance.database.session() as session:
            serials = list(session.scalars(
                select(EstateTestKey.serial).where(EstateTestKey.subject_eui == eui, EstateTestKey.role == role,
                                                   EstateTestKey.key_usage == cell.usage,
                                                   EstateTestKey.cell_usage == CELL_USAGE_CODE[cell.cell_usage])
                .order_by(EstateTestKey.id.desc())))
        for serial in serials:
            record = self.repository.get(serial)
            if record is not None and record.status == "I":
                return record
        return None

    def _organisation_certificates(self, eui: str, role: int, usage: str) -> list[CertificateRecord]:
        """Issued Organisation Certificates of ``eui`` in ``role`` with ``usage``, newest first."""
        key = (eui, role, usage)
        if key not in self._found:
            page = self.repository.search(subject_eui=eui, role=role, usage=REPOSITORY_USAGE[usage], status="I",
                                          kind="organisation", limit=1000)
            self._found[key] = list(reversed(page.records))
        return self._found[key]

    def _anchor(self, record: CertificateRecord, cell: TrustAnchorCell, party_id: int | None) -> Anchor:
        full = self.repository.get(record.serial, record.issuer)
        assert full is not None and full.der is not None
        certificate = x509.load_der_x509_certificate(full.der)
        return Anchor(certificate, full.der, self._role_code(cell.role), cell.usage, record.subject_eui, party_id)


def store_anchors(session: Session, plans: Mapping[str, TypePlan]) -> dict[tuple[str, str], int]:
    """Give every anchor of the plans its ``estate_anchor`` row (once per certificate); returns their ids."""
    wanted: dict[tuple[str, str], Anchor] = {}
    for plan in plans.values():
        for anchor in plan.common:
            if anchor is not None:
                wanted.setdefault(anchor.key, anchor)
        for owners in plan.owners.values():
            for _party, anchors in owners:
                for anchor in anchors:
                    if anchor is not None:
                        wanted.setdefault(anchor.key, anchor)
    ids: dict[tuple[str, str], int] = {}
    for key, anchor in wanted.items():
        existing = session.scalar(select(EstateAnchor.id).where(EstateAnchor.serial == key[0],
                                                                EstateAnchor.issuer == key[1]))
        if existing is None:
            row = EstateAnchor(serial=key[0], issuer=key[1], role=anchor.role, key_usage=anchor.key_usage,
                               subject_eui=anchor.subject_eui, subject_key_identifier=_ski(anchor.certificate),
                               party_id=anchor.party_id, der=anchor.der)
            session.add(row)
            session.flush()
            existing = row.id
        ids[key] = existing
    return ids


def _ski(certificate: x509.Certificate) -> str:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex().upper()
    except x509.ExtensionNotFound:
        return ""


def plan_json(mix: Mapping[str, int], plans: Mapping[str, TypePlan], ids: Mapping[tuple[str, str], int]) -> str:
    """The plan as stored with the run: anchors by their row id."""
    def anchor_id(anchor: Anchor | None) -> int | None:
        return None if anchor is None else ids[anchor.key]
    return json.dumps({
        "pattern": [name for name, weight in mix.items() for _ in range(weight)],
        "types": {name: {"certificates": plan.certificates, "cells": plan.cells, "counters": plan.counters,
                         "common": [anchor_id(a) for a in plan.common],
                         "owners": {role: [[party, [anchor_id(a) for a in anchors]] for party, anchors in owners]
                                    for role, owners in plan.owners.items()}}
                  for name, plan in plans.items()}}, separators=(",", ":"))
