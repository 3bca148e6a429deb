"""``estate.yaml``: the simulated device estate's device types, their trust-anchor cells and owners, and how
``smki estate create`` cuts its work (docs/estate.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field

from smki.core.policyfiles.base import Eui64Value, Names, PolicyContext, PolicyModel, Problem, TupleOf, unknown

ROLE_NAMES = "roles"            # PolicyContext: Remote Party Role names from roles.yaml
USER_ROLES = "user_roles"       # PolicyContext: the RA's User Roles (eligibility.yaml)
DCC_IDENTIFIERS = "dcc_identifiers"  # PolicyContext: the keys of the environment's dcc_entity_identifiers

CellKeyUsage = Literal["keyCertSign", "digitalSignature", "keyAgreement"]
CellUsage = Literal["management", "prePaymentTopUp"]
Share = Annotated[float, Field(ge=0, le=1)]
# Roles whose cells hold the sandbox's own CA or Recovery certificate, not an Organisation Certificate from
# the Repository; and the roles a device's owning Parties fill.
HIERARCHY_ROLES = ("root", "recovery")
OWNER_ROLES = ("supplier", "networkOperator")


class TrustAnchorCell(PolicyModel):
    """One cell, keyed as GBCS keys it: (Remote Party Role, key usage, cell usage)."""

    role: Annotated[str, Field(min_length=1)]
    """A Remote Party Role name from roles.yaml."""
    usage: CellKeyUsage
    """The key usage of the certificate the cell holds (keyCertSign: the root)."""
    cell_usage: CellUsage = "management"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.role, self.usage, self.cell_usage)


class DeviceType(PolicyModel):
    gbcs_code: Annotated[int, Field(ge=0, le=255)]
    """GBCS DeviceType: 0 GSME, 1 ESME, 2 CHF, ..."""
    weight: Annotated[int, Field(ge=0)] = 1
    """This type's share of an estate when the command line names no mix (whole-number weights)."""
    certificates: TupleOf[Literal["digitalSignature", "keyAgreement"]]
    """The Device Certificates the device holds, one key pair each."""
    owners: dict[str, Names] = Field(default_factory=dict)
    """Owning Parties by Remote Party Role (supplier, networkOperator): the RA User Roles that may own it."""
    cells: TupleOf[TrustAnchorCell]


class Faults(PolicyModel):
    """The share of new devices made with each injected fault."""

    offline: Share = 0.0
    busy: Share = 0.0
    out_of_memory: Share = 0.0
    command_lost: Share = 0.0
    stale_cells: Share = 0.0
    tampered_cells: Share = 0.0


class EstatePolicy(PolicyModel):
    """``estate.yaml``."""

    chunk_size: Annotated[int, Field(gt=0, le=50_000)] = 500
    """Devices built and committed together by one job."""
    lease_seconds: Annotated[float, Field(gt=0)] = 300
    """A chunk claimed by a worker that vanished is built by another after this long."""
    first_device_id: Eui64Value
    """The Device ID of simulated device 0; device n is this plus n."""
    dcc_roles: dict[str, str] = Field(default_factory=dict)
    """Remote Party Role name -> key of the environment's dcc_entity_identifiers (whose certificates it holds)."""
    require_every_cell: bool = True
    """Refuse to start when a cell has no certificate to load, rather than leaving it empty."""
    faults: Faults = Faults()
    test_parties: Names = ()
    """Demo and drill Parties (RA organisation names) whose test key pairs the sandbox may hold; no other."""
    device_types: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,16}$")], DeviceType]

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        roles, user_roles = context.names(ROLE_NAMES), context.names(USER_ROLES)
        dcc_keys = context.names(DCC_IDENTIFIERS)
        if not self.device_types:
            yield Problem(("device_types",), "at least one device type", {})
        for role, key in self.dcc_roles.items():
            if roles is not None and role not in roles:
                yield unknown(("dcc_roles", role, "[key]"), role, roles, "the roles in roles.yaml")
            if dcc_keys is not None and key not in dcc_keys:
                yield unknown(("dcc_roles", role), key, dcc_keys, "the environment's dcc_entity_identifiers")
        for name, device_type in self.device_types.items():
            where = ("device_types", name)
            if len(set(device_type.certificates)) != len(device_type.certificates):
                yield Problem((*where, "certificates"), "each key usage once", list(device_type.certificates))
            seen: set[tuple[str, str, str]] = set()
            for index, cell in enumerate(device_type.cells):
                loc = (*where, "cells", index)
                if roles is not None and cell.role not in roles:
                    yield unknown((*loc, "role"), cell.role, roles, "the roles in roles.yaml")
                elif not (cell.role in HIERARCHY_ROLES or cell.role in self.dcc_roles or cell.role in OWNER_ROLES):
                    yield Problem((*loc, "role"), "root, recovery, an owner role (supplier, networkOperator) or "
                                  "a role under dcc_roles: nothing else says where its certificate comes from",
                                  cell.role)
                elif cell.role in OWNER_ROLES and cell.role not in device_type.owners:
                    yield Problem((*where, "owners"), f"an entry for {cell.role}, whose cell this type holds",
                                  dict(device_type.owners))
                if (cell.role == "root") != (cell.usage == "keyCertSign"):
                    yield Problem((*loc, "usage"), "keyCertSign for the root cell and only there", cell.usage)
                if cell.key in seen:
                    yield Problem(loc, "each (role, usage, cell_usage) once", cell.model_dump())
                seen.add(cell.key)
            for role, named in device_type.owners.items():
                if role not in OWNER_ROLES:
                    yield unknown((*where, "owners", role, "[key]"), role, OWNER_ROLES, "the owner roles")
                for index, user_role in enumerate(named):
                    if user_roles is not None and user_role not in user_roles:
                        yield unknown((*where, "owners", role, index), user_role, user_roles,
                                      "the User Roles of eligibility.yaml")
