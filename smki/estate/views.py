"""Reading the estate: one device in full (``smki estate show``), and counts by type, anchor state and fault
(``smki estate status``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from repository.store import CertificateRepository
from smki.core.eui64 import Eui64, InvalidEui64
from smki.estate import faults
from smki.estate.chunks import DONE
from smki.estate.models import EstateAnchor, EstateChunk, EstateDevice, EstateRun
from smki.estate.plan import EstateError
from smki.instance import Instance
from smki.ra import registry

UNKNOWN_DEVICE = "ES:DEV1"
BAD_DEVICE_ID = "ES:DEV2"
CELL_USAGE_NAME = {0: "management", 1: "prePaymentTopUp"}


@dataclass(frozen=True)
class CellView:
    role: str
    key_usage: str
    cell_usage: str
    state: str
    serial: str | None
    issuer: str | None
    subject_eui: str | None
    subject_key_identifier: str | None


@dataclass(frozen=True)
class DeviceView:
    device_id: str
    device_type: str
    run_id: int
    supplier: str | None
    network_operator: str | None
    faults: list[str]
    counters: dict[str, int]
    certificates: dict[str, tuple[str, str]]        # usage -> (serial, Repository status or "absent")
    cells: list[CellView] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "device_type": self.device_type, "run": self.run_id,
                "supplier": self.supplier, "network_operator": self.network_operator, "faults": self.faults,
                "counters": self.counters,
                "certificates": {usage: {"serial": serial, "repository": status}
                                 for usage, (serial, status) in self.certificates.items()},
                "cells": [cell.__dict__ for cell in self.cells]}


@dataclass(frozen=True)
class EstateCounts:
    runs: list[tuple[int, str, int, int]]               # (run, status, devices built, devices asked)
    devices_by_type: dict[str, int]
    devices_by_anchor_state: dict[tuple[str, str], int]  # (type, worst cell state) -> devices
    faults_by_type: dict[tuple[str, str], int]           # (type, fault) -> devices


def _role_names(instance: Instance) -> dict[int, str]:
    return {role.code: role.name for role in instance.policies.roles.roles}


def show(instance: Instance, device: str) -> DeviceView:
    try:
        device_id = Eui64.parse(device).hex
    except InvalidEui64 as error:
        raise EstateError(BAD_DEVICE_ID, f"{device!r} is not a Device ID: expected an EUI-64 of 16 hexadecimal "
                          "digits, such as 00DB5A0000000001 or 00-DB-5A-00-00-00-00-01", field="device") from error
    roles = _role_names(instance)
    with instance.database.session() as session:
        row = session.execute(select(EstateDevice).where(EstateDevice.device_id == device_id)).scalar_one_or_none()
        if row is None:
            raise EstateError(UNKNOWN_DEVICE, f"device {device_id} is not in the estate; `smki estate status` "
                              "counts the devices there are")
        cells = json.loads(row.cells)
        anchors = {a.id: a for a in session.execute(
            select(EstateAnchor.id, EstateAnchor.serial, EstateAnchor.issuer, EstateAnchor.subject_eui,
                   EstateAnchor.subject_key_identifier)
            .where(EstateAnchor.id.in_({c[3] for c in cells if c[3] is not None})))}
        owners = {column: registry.organisation(session, party_id).name if party_id is not None else None
                  for column, party_id in (("supplier", row.supplier_party_id),
                                           ("network_operator", row.network_operator_party_id))}
        view_row = (row.device_id, row.device_type, row.run_id, row.faults, row.counters, row.ds_serial, row.ka_serial)
    repository = CertificateRepository(instance.database)
    certificates = {}
    for usage, serial in (("digitalSignature", view_row[5]), ("keyAgreement", view_row[6])):
        if serial:
            record = repository.get(serial)
            certificates[usage] = (serial, record.status_text if record else "absent")
    return DeviceView(view_row[0], view_row[1], view_row[2], owners["supplier"], owners["network_operator"],
                      faults.names(view_row[3]),
                      {roles.get(int(code), code): value for code, value in json.loads(view_row[4]).items()},
                      certificates,
                      [_cell_view(roles, role, usage, cell_usage, state, anchors.get(anchor))
                       for role, usage, cell_usage, anchor, state in cells])


def _cell_view(roles: dict[int, str], role: int, usage: str, cell_usage: int, state: str, anchor: Any) -> CellView:
    return CellView(roles.get(role, str(role)), usage, CELL_USAGE_NAME.get(cell_usage, str(cell_usage)), state,
                    anchor.serial if anchor else None, anchor.issuer if anchor else None,
                    anchor.subject_eui if anchor else None, anchor.subject_key_identifier if anchor else None)


def counts(instance: Instance) -> EstateCounts:
    with instance.database.session() as session:
        runs = [(r.id, r.status, int(r.built or 0), r.device_count) for r in session.execute(
            select(EstateRun.id, EstateRun.status, EstateRun.device_count,
                   select(func.sum(EstateChunk.device_count))
                   .where(EstateChunk.run_id == EstateRun.id, EstateChunk.state == DONE)
                   .scalar_subquery().label("built"))
            .order_by(EstateRun.id))]
        devices = dict(session.execute(select(EstateDevice.device_type, func.count())
                                       .group_by(EstateDevice.device_type)).all())
        anchor_states = {(t, s): n for t, s, n in session.execute(
            select(EstateDevice.device_type, EstateDevice.anchor_state, func.count())
            .group_by(EstateDevice.device_type, EstateDevice.anchor_state))}
        fault_counts: dict[tuple[str, str], int] = {}
        for name, flag in faults.FAULT_BY_POLICY_KEY.items():
            for device_type, number in session.execute(
                    select(EstateDevice.device_type, func.count())
                    .where(EstateDevice.faults.op("&")(int(flag)) != 0)
                    .group_by(EstateDevice.device_type)):
                fault_counts[(device_type, name)] = number
    return EstateCounts(runs, devices, anchor_states, fault_counts)
