"""The file a custodian carries their sealed share in (the sandbox's stand-in for a smart card): JSON naming
the key, the custody generation, the custodian and the share index, with the sealed share in base64. Safe to
keep on disk: the share inside opens only with the custodian's passphrase."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from smki.recovery.custody import IssuedShare
from smki.recovery.errors import UNOPENABLE, CustodyRefused

FORMAT = "smki-key-custodian-share/1"


@dataclass(frozen=True)
class Carried:
    key_name: str
    generation: int
    appointment_id: int
    share_index: int
    sealed: bytes


def write(directory: Path, key_name: str, generation: int, share: IssuedShare) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key_name}-g{generation}-custodian-{share.appointment_id}.share"
    body = {"format": FORMAT, "key": key_name, "generation": generation, "custodian": share.appointment_id,
            "custodian_name": share.custodian_name, "share_index": share.share_index,
            "sealed": base64.b64encode(share.sealed).decode()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(body, handle, indent=2)
    return path


def read(path: Path) -> Carried:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        return Carried(str(body["key"]), int(body["generation"]), int(body["custodian"]), int(body["share_index"]),
                       base64.b64decode(body["sealed"], validate=True))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CustodyRefused(UNOPENABLE, f"{path} is not a Key Custodian share file ({exc}).", field="share") from None
