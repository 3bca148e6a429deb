"""Faults a drill injects into the devices its compromise affects, chosen from the seed (the same seed, the same
devices): offline (answers nothing), busy (answers resourcesBusy), tampered cells (every cell but the root no
longer trustworthy), command lost (the next command never arrives; the one after does). The estate's own fault
flags (:mod:`smki.estate.faults`), set on the chosen devices of the drill world after it is built."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence

from sqlalchemy import select, update

from smki.core.errors import SmkiError
from smki.drills.world import World
from smki.estate.faults import CELL_STATE_OF_FAULT, FAULT_BY_POLICY_KEY, Fault
from smki.estate.models import EstateDevice
from smki.estate.service import worst_state

BAD_FAULTS = "DR:FLT1"
INJECTABLE = ("offline", "busy", "tampered_cells", "command_lost")


def parse(text: str | None) -> dict[str, int]:
    """``offline=1,busy=2`` to counts (``DR:FLT1`` naming what is wrong)."""
    counts: dict[str, int] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, _, number = item.partition("=")
        name = name.strip()
        if name not in INJECTABLE or not number.strip().isdigit():
            raise SmkiError(BAD_FAULTS, f"--faults is NAME=COUNT,... with NAME among {', '.join(INJECTABLE)}; "
                            f"{item.strip()!r} is not", field="faults")
        counts[name] = int(number)
    return counts


def choose(seed: int, affected: Sequence[str], counts: Mapping[str, int]) -> dict[str, list[str]]:
    """Distinct affected devices for each fault, drawn from the seed (fewer when there are not enough)."""
    rng = random.Random(f"smki-drill-faults:{seed}")
    pool = sorted(affected)
    rng.shuffle(pool)
    chosen: dict[str, list[str]] = {}
    for name in INJECTABLE:
        count = min(counts.get(name, 0), len(pool))
        chosen[name], pool = sorted(pool[:count]), pool[count:]
    return {name: devices for name, devices in chosen.items() if devices}


def inject(world: World, chosen: Mapping[str, Sequence[str]]) -> None:
    """Set the faults on the chosen devices, all in one transaction."""
    cell_state = dict(CELL_STATE_OF_FAULT)
    with world.instance.database.session() as session:
        for name, devices in chosen.items():
            flag: Fault = FAULT_BY_POLICY_KEY[name]
            for row in session.execute(select(EstateDevice.device_id, EstateDevice.faults, EstateDevice.cells)
                                       .where(EstateDevice.device_id.in_(list(devices)))).all():
                values: dict[str, object] = {"faults": int(row.faults) | int(flag)}
                if flag in cell_state:
                    cells = [[role, usage, kind, anchor, state if role == 0 or anchor is None else cell_state[flag]]
                             for role, usage, kind, anchor, state in json.loads(row.cells)]
                    values["cells"] = json.dumps(cells, separators=(",", ":"))
                    values["anchor_state"] = worst_state(cell[4] for cell in cells)
                session.execute(update(EstateDevice).where(EstateDevice.device_id == row.device_id).values(**values))
