"""Delivering commands to the stored estate: load the devices, run the pure processor, save what changed.

One transaction per delivery (a chunk of devices): the devices are read with a row lock (PostgreSQL), each is
processed by :func:`smki.estate.processor.process`, and their new cells, counters and faults are written back
before the commit; a failure anywhere rolls back every device of the chunk, so a resumed delivery starts from
the state as it was. Future-dated commands a device accepted are kept on its row (``pending``, with the earliest
execution time in ``next_due_at``); :func:`run_due_commands` runs those whose time has come, and a delivery runs a
device's due ones before the command it brings, as the device's clock would have. A certificate a command
places is stored once in ``estate_anchor``, like the certificates loaded at installation.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.orm import Session

from repository.certificates import serial_text
from smki.core.db import Database
from smki.core.driver_sql import driver_statement
from smki.estate.device import Cell, DeviceState, read_certificate
from smki.estate.models import EstateAnchor, EstateDevice
from smki.estate.plan import EstateError
from smki.estate.processor import Processed, execution_time, process, run_due
from smki.estate.service import worst_state

UNKNOWN_DEVICES = "ES:DEV1"


@dataclass(frozen=True)
class Delivered:
    device_id: str
    processed: Processed
    # Signed alerts (0x8F66/0x8F67) of future-dated commands that came due before this command arrived, run first.
    alerts: tuple[bytes, ...] = ()


def device_state(row: EstateDevice | Row[Any], anchors: Mapping[int, bytes],
                 read: dict[str, Any] | None = None) -> DeviceState:
    """A stored device as the processor sees it. ``read``: a chunk's cache of the JSON it has decoded (the
    devices of a chunk mostly hold the same cells and counters, and the values are immutable or never mutated)."""
    cells = None if read is None else read.get(row.cells)
    if cells is None:
        cells = tuple(Cell(role, usage, cell_usage, anchors.get(anchor) if anchor is not None else None, state)
                      for role, usage, cell_usage, anchor, state in json.loads(row.cells))
        if read is not None:
            read[row.cells] = cells
    counters = None if read is None else read.get(row.counters)
    if counters is None:
        counters = {int(role): int(value) for role, value in json.loads(row.counters).items()}
        if read is not None:
            read[row.counters] = counters
    assert row.ds_private_key is not None
    pending = tuple(bytes.fromhex(octets) for octets in json.loads(row.pending)) if row.pending else ()
    return DeviceState(bytes.fromhex(row.device_id), row.ds_private_key, row.ka_private_key, cells, counters,
                       row.faults, pending, row.alerts_sent or 0)


def deliver(database: Database, commands: Mapping[str, bytes], now: dt.datetime | None = None) -> list[Delivered]:
    """Deliver each command (Device ID -> wire octets) to its device, in ONE transaction: every device's new
    state is saved, or none. Refuses (``ES:DEV1``) when a Device ID is not in the estate."""
    with database.session() as session:
        return deliver_within(session, commands, now)


def deliver_within(session: Session, commands: Mapping[str, bytes], now: dt.datetime | None = None) -> list[Delivered]:
    """:func:`deliver` in the caller's transaction (a send run commits its chunk's done mark and its outcomes
    with the devices' new state, so that a resumed run never delivers a chunk twice)."""
    moment = now or dt.datetime.now(dt.UTC)
    # Plain rows, not ORM objects: a chunk of devices is read in one query and written in one executemany.
    rows = {row.device_id: row for row in session.execute(
        select(*_READ).where(_DEVICES.c.device_id.in_(list(commands))).with_for_update()).all()}
    missing = sorted(set(commands) - set(rows))
    if missing:
        raise EstateError(UNKNOWN_DEVICES, f"{len(missing)} devices are not in the estate, such as {missing[0]}",
                          field="device")
    anchors, ids_by_der = _anchors(session, rows.values())
    out: list[Delivered] = []
    updates: list[dict[str, Any]] = []
    read: dict[str, Any] = {}
    written: dict[Any, Any] = {}
    for device_id, octets in commands.items():
        row = rows[device_id]
        before = device_state(row, anchors, read)
        current, alerts = run_due(before, moment) if before.pending else (before, [])
        result = process(current, octets, moment)
        if result.state is not before:   # the processor hands back the very state it was given when nothing changed
            _save(session, row, result.state, ids_by_der, updates, written)
        out.append(Delivered(device_id, result, tuple(alerts)))
    _write(session, updates)
    return out


def run_due_commands(database: Database, now: dt.datetime | None = None, *,
                     chunk_size: int = 500) -> dict[str, list[bytes]]:
    """Run every stored future-dated command whose execution time has come, each device's in the order received;
    one transaction per chunk of devices. Returns each device's signed alerts (0x8F66 when every cell of the
    command succeeded, 0x8F67 otherwise)."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    out: dict[str, list[bytes]] = {}
    while True:
        with database.session() as session:
            rows = list(session.execute(
                select(*_READ).where(_DEVICES.c.next_due_at <= moment).order_by(_DEVICES.c.number)
                .limit(chunk_size).with_for_update()))
            if not rows:
                return out
            anchors, ids_by_der = _anchors(session, rows)
            updates: list[dict[str, Any]] = []
            for row in rows:
                state, alerts = run_due(device_state(row, anchors), moment)
                _save(session, row, state, ids_by_der, updates)
                out.setdefault(row.device_id, []).extend(alerts)
            _write(session, updates)


def _anchors(session: Session, rows: Iterable[Row[Any]]) -> tuple[dict[int, bytes], dict[bytes, int]]:
    """The certificates the devices' cells hold, by anchor id, in one query; and the ids by certificate."""
    # The devices of a chunk mostly hold the same cells: each distinct stored value is read once.
    anchor_ids = {cell[3] for cells in {row.cells for row in rows} for cell in json.loads(cells)
                  if cell[3] is not None}
    anchors = {anchor_id: der for anchor_id, der in session.execute(
        select(EstateAnchor.id, EstateAnchor.der).where(EstateAnchor.id.in_(anchor_ids)))}
    return anchors, {der: anchor_id for anchor_id, der in anchors.items()}


def _save(session: Session, row: Row[Any], state: DeviceState, ids_by_der: dict[bytes, int],
          updates: list[dict[str, Any]], written: dict[Any, Any] | None = None) -> None:
    """Add the device's new state to ``updates`` (written by :func:`_write`, with the rest of the chunk).
    ``written``: a chunk's cache of the JSON it has encoded, by the cells (as objects) and counters encoded."""
    written = {} if written is None else written
    # By the cells' identity (the devices that got the same command and held the same cells share the new tuple);
    # the entry holds the tuple, so its id is not reused while the chunk's cache lives.
    held = written.get(id(state.cells))
    if held is None or held[0] is not state.cells:
        cells = []
        for cell in state.cells:
            anchor_id = None if cell.anchor is None else _anchor_id(session, cell, ids_by_der)
            cells.append([cell.role, cell.key_usage, cell.cell_usage, anchor_id, cell.state])
        held = written[id(state.cells)] = (state.cells, json.dumps(cells, separators=(",", ":")),
                                           worst_state(cell.state for cell in state.cells))
    counters_key = tuple(sorted(state.counters.items()))
    counters = written.get(counters_key)
    if counters is None:
        counters = written[counters_key] = json.dumps({str(role): value for role, value in counters_key},
                                                      separators=(",", ":"))
    updates.append({
        "b_number": row.number,
        "b_cells": held[1],
        "b_counters": counters,
        "b_faults": int(state.faults),
        "b_anchor_state": held[2],
        "b_pending": json.dumps([octets.hex() for octets in state.pending]) if state.pending else None,
        "b_next_due_at": min(execution_time(octets) for octets in state.pending).astimezone(dt.UTC)
        if state.pending else None,
        "b_alerts_sent": state.alerts_sent})


_DEVICES = cast(Table, EstateDevice.__table__)
# The columns a delivery reads: what the processor needs and the row's number to write it back by (not the rest:
# on SQLite every date-time column read is a string parsed).
_READ = tuple(_DEVICES.c[name] for name in ("number", "device_id", "ds_private_key", "ka_private_key", "cells",
                                            "counters", "faults", "pending", "alerts_sent"))
_SAVED = ("cells", "counters", "faults", "anchor_state", "pending", "next_due_at", "alerts_sent")


def _write(session: Session, updates: list[dict[str, Any]]) -> None:
    """The chunk's changed devices in one executemany UPDATE, compiled once and run on the driver's cursor
    (SQLAlchemy's per-row parameter processing cost as much as the UPDATE itself)."""
    if updates:
        driver_statement("estate:save-devices", session.connection(), lambda _dialect: (
            update(_DEVICES).where(_DEVICES.c.number == bindparam("b_number"))
            .values({name: bindparam(f"b_{name}") for name in _SAVED}), None)).executemany(session.connection(),
                                                                                          updates)


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
