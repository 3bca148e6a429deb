"""Delivering commands to the stored estate: load the devices, run the pure processor, save what changed.

One transaction per delivery (a chunk of devices): the devices are read with a row lock (PostgreSQL), each is
processed by :func:`smki.estate.processor.process`, and their new cells, counters and faults are written back
before the commit; a failure anywhere rolls back every device of the chunk, so a resumed delivery starts from
the state as it was. A certificate a command places is stored once in ``estate_anchor``, like the certificates
loaded at installation.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from repository.certificates import serial_text
from smki.core.db import Database
from smki.estate.device import Cell, DeviceState, read_certificate
from smki.estate.models import EstateAnchor, EstateDevice
from smki.estate.plan import EstateError
from smki.estate.processor import Processed, process
from smki.estate.service import worst_state

UNKNOWN_DEVICES = "ES:DEV1"


@dataclass(frozen=True)
class Delivered:
    device_id: str
    processed: Processed


def device_state(row: EstateDevice, anchors: Mapping[int, bytes]) -> DeviceState:
    """A stored device as the processor sees it."""
    cells = tuple(Cell(role, usage, cell_usage, anchors.get(anchor) if anchor is not None else None, state)
                  for role, usage, cell_usage, anchor, state in json.loads(row.cells))
    counters = {int(role): int(value) for role, value in json.loads(row.counters).items()}
    assert row.ds_private_key is not None
    return DeviceState(bytes.fromhex(row.device_id), row.ds_private_key, row.ka_private_key, cells, counters,
                       row.faults)


def deliver(database: Database, commands: Mapping[str, bytes], now: dt.datetime | None = None) -> list[Delivered]:
    """Deliver each command (Device ID -> wire octets) to its device, in ONE transaction: every device's new
    state is saved, or none. Refuses (``ES:DEV1``) when a Device ID is not in the estate."""
    moment = now or dt.datetime.now(dt.UTC)
    with database.session() as session:
        rows = {row.device_id: row for row in session.execute(
            select(EstateDevice).where(EstateDevice.device_id.in_(list(commands))).with_for_update()).scalars()}
        missing = sorted(set(commands) - set(rows))
        if missing:
            raise EstateError(UNKNOWN_DEVICES, f"{len(missing)} devices are not in the estate, such as {missing[0]}",
                              field="device")
        anchor_ids = {cell[3] for row in rows.values() for cell in json.loads(row.cells) if cell[3] is not None}
        anchors = {anchor_id: der for anchor_id, der in session.execute(
            select(EstateAnchor.id, EstateAnchor.der).where(EstateAnchor.id.in_(anchor_ids)))}
        ids_by_der = {der: anchor_id for anchor_id, der in anchors.items()}
        out: list[Delivered] = []
        for device_id, octets in commands.items():
            row = rows[device_id]
            before = device_state(row, anchors)
            result = process(before, octets, moment)
            if result.state != before:
                _save(session, row, result.state, ids_by_der)
            out.append(Delivered(device_id, result))
        return out


def _save(session: Session, row: EstateDevice, state: DeviceState, ids_by_der: dict[bytes, int]) -> None:
    cells = []
    for cell in state.cells:
        anchor_id = None if cell.anchor is None else _anchor_id(session, cell, ids_by_der)
        cells.append([cell.role, cell.key_usage, cell.cell_usage, anchor_id, cell.state])
    row.cells = json.dumps(cells, separators=(",", ":"))
    row.counters = json.dumps({str(role): value for role, value in sorted(state.counters.items())},
                              separators=(",", ":"))
    row.faults = int(state.faults)
    row.anchor_state = worst_state(cell.state for cell in state.cells)


def _anchor_id(session: Session, cell: Cell, ids_by_der: dict[bytes, int]) -> int:
    assert cell.anchor is not None
    known = ids_by_der.get(cell.anchor)
    if known is not None:
        return known
    anchor = read_certificate(cell.anchor)
    assert anchor is not None   # the processor placed only certificates it could read
    serial = serial_text(anchor.certificate.serial_number)
    issuer = anchor.certificate.issuer.rfc4514_string()
    existing = session.scalar(select(EstateAnchor.id).where(EstateAnchor.serial == serial,
                                                            EstateAnchor.issuer == issuer))
    if existing is None:
        subject = anchor.subject_id.hex().upper() if any(anchor.subject_id) else None
        row = EstateAnchor(serial=serial, issuer=issuer, role=cell.role, key_usage=cell.key_usage,
                           subject_eui=subject, subject_key_identifier=anchor.key_identifier.hex().upper(),
                           party_id=None, der=cell.anchor)
        session.add(row)
        session.flush()
        existing = row.id
    ids_by_der[cell.anchor] = existing
    return existing
