"""Evidence of the commands a drill sends: for each send, the command for its first device and the device's
answer, exported in the RTDS layout (``<name>_GBCS.HEX``, :func:`smki.gbcs.export`) under
``<world>/artefacts/commands/``.

The sample is built by the command sender from the same request (mode, cells, placements, keys) just before the
send, and answered by the device simulator's pure processing function on the device as it stands: nothing is
delivered or stored by it, so the send that follows is exactly what it would be without it. (The send's own
commands differ only in their counter and the ECDSA nonce of their signatures.)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from smki.core.errors import SmkiError
from smki.drills.world import World
from smki.estate.models import EstateAnchor, EstateDevice
from smki.estate.processing import device_state
from smki.estate.processor import process
from smki.estate.sending import CommandSender, Device
from smki.gbcs import export


def sample(world: World, *, name: str, mode: str, roles: list[str], device_id: str,
           placements: Mapping[str, Any] | None, signer: ec.EllipticCurvePrivateKey | None,
           symmetric_key: bytes | None) -> tuple[list[dict[str, str]], str | None]:
    """The sample's artefacts (relative paths under the artefacts folder), or none and why."""
    sender = CommandSender(world.instance)
    now = dt.datetime.now(dt.UTC)
    try:
        order = sender.order(mode, roles, placements, now)
        keys = sender.keys(order, signer, symmetric_key)
        with world.instance.database.session() as session:
            row = session.execute(select(EstateDevice).where(EstateDevice.device_id == device_id)).scalar_one()
            cells = json.loads(row.cells)
            anchors = {a.id: (a.serial, a.subject_eui, a.der) for a in session.execute(
                select(EstateAnchor.id, EstateAnchor.serial, EstateAnchor.subject_eui, EstateAnchor.der)
                .where(EstateAnchor.id.in_({c[3] for c in cells if c[3] is not None})))}
            state = device_state(row, {anchor: der for anchor, (_s, _e, der) in anchors.items()})
            device = Device(row.device_id, row.ds_serial, row.ka_serial, cells, anchors)
        device_ka = sender.certificate_keys([device.ka_serial]).get(device.ka_serial or "")
        octets = sender.command(order, keys, device, device_ka)
    except SmkiError as error:
        return [], f"{error.code} {error.message}"
    folder = world.artefacts / "commands"
    written = [export(octets, folder, f"{name}-command")[0]]
    processed = process(state, octets, now)
    if processed.answer is not None:
        written.append(export(processed.answer, folder, f"{name}-response")[0])
    artefacts = [{"path": str(path.relative_to(world.artefacts)), "kind": kind,
                  "description": f"{description} ({mode}, device {device_id})"}
                 for path, kind, description in zip(written, ("command", "response"),
                                                    ("the command sent, RTDS layout", "the device's response"),
                                                    strict=False)]
    why = None if processed.answer is not None else \
        f"the device answered nothing: {processed.refusal.code if processed.refusal else 'no answer'}"
    return artefacts, why
