"""Faults injected into simulated devices, as data the command processor reads (issue 13 item 3).

A device's faults are bit flags on its row. Which new devices get which fault is decided by a hash of the
Device ID and the fault's name against the share in ``policies/estate.yaml``, so the same device gets the same
faults however a run is cut into chunks, interrupted or resumed.
"""

from __future__ import annotations

import enum
import hashlib

from smki.core.policyfiles.estate import Faults


class Fault(enum.IntFlag):
    OFFLINE = 1          # answers nothing
    BUSY = 2             # answers resourcesBusy (30)
    OUT_OF_MEMORY = 4    # answers insufficientMemory (17)
    COMMAND_LOST = 8     # the next command never arrives
    STALE_CELLS = 16     # its cells (all but the root) hold superseded anchors
    TAMPERED_CELLS = 32  # its cells (all but the root) no longer match what was loaded


FAULT_BY_POLICY_KEY = {"offline": Fault.OFFLINE, "busy": Fault.BUSY, "out_of_memory": Fault.OUT_OF_MEMORY,
                       "command_lost": Fault.COMMAND_LOST, "stale_cells": Fault.STALE_CELLS,
                       "tampered_cells": Fault.TAMPERED_CELLS}
CELL_STATE_OF_FAULT = ((Fault.TAMPERED_CELLS, "tampered"), (Fault.STALE_CELLS, "stale"))
_SCALE = float(1 << 64)


def names(flags: int) -> list[str]:
    return [key for key, fault in FAULT_BY_POLICY_KEY.items() if flags & fault]


def parse(names_given: list[str]) -> Fault:
    """Fault names as the policy file spells them (offline, busy ...) to flags; unknown names raise KeyError."""
    flags = Fault(0)
    for name in names_given:
        flags |= FAULT_BY_POLICY_KEY[name]
    return flags


class FaultDraw:
    """The faults of new devices under one policy."""

    def __init__(self, shares: Faults) -> None:
        self.shares = [(key.encode(), FAULT_BY_POLICY_KEY[key], share)
                       for key, share in shares.model_dump().items() if share > 0]

    def __call__(self, device_id: bytes) -> int:
        flags = 0
        for key, fault, share in self.shares:
            draw = int.from_bytes(hashlib.sha256(device_id + key).digest()[:8], "big") / _SCALE
            if draw < share:
                flags |= fault
        return flags

    def cell_state(self, flags: int) -> str:
        """The state of a faulty device's non-root cells."""
        return next((state for fault, state in CELL_STATE_OF_FAULT if flags & fault), "installed")
