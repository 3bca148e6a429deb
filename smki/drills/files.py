"""The files that travel between the Parties, the DCC and the SMKI PMA in a recovery (recovery.md: their layouts
are not public, so the sandbox designs them): the Organisation and Other Compromise Notification Files and the
Organisation and Other Compromise Recovery Progress Files, as JSON documents with a JSON Schema each
(``smki/drills/schemas/``, docs/drills.md). Every file is validated against its schema when written and when
read, so a file the drill hands on, or one a person edits, is never taken as it is when it is wrong.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, FormatChecker

from smki.core.errors import SmkiError

SCHEMAS = Path(__file__).resolve().parent / "schemas"
BAD_FILE = "DR:FIL1"
Kind = Literal["organisation-compromise-notification", "other-compromise-notification",
               "organisation-compromise-progress", "other-compromise-progress"]
KINDS: tuple[Kind, ...] = ("organisation-compromise-notification", "other-compromise-notification",
                           "organisation-compromise-progress", "other-compromise-progress")


class DrillFileError(SmkiError):
    """A notification or progress file is not as its schema describes; nothing was written or taken from it."""

    status = 422


@cache
def validator(kind: Kind) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def check(kind: Kind, document: Any) -> None:
    """Refuse (``DR:FIL1``) a document that its schema does not describe, naming every problem's place."""
    errors = sorted(validator(kind).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        where = "; ".join(f"{'/'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
                          for e in errors[:5])
        raise DrillFileError(BAD_FILE, f"the {kind.replace('-', ' ')} file is not as its schema "
                             f"(smki/drills/schemas/{kind}.schema.json) describes: {where}", field=kind)


def write(path: Path, kind: Kind, document: dict[str, Any]) -> Path:
    """Validate, then write whole (a temporary file renamed into place: a reader never sees half a file)."""
    check(kind, document)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def read(path: Path, kind: Kind) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DrillFileError(BAD_FILE, f"{path} is not a readable JSON {kind.replace('-', ' ')} file ({error})",
                             field=kind) from None
    check(kind, document)
    assert isinstance(document, dict)
    return document
