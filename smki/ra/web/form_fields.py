"""HTML controls for a RAPP form's JSON schema, and the payload a posted HTML form makes.

Values that do not convert (a number field holding letters) are passed on as typed, so the form's schema
reports them with every other bad field at once, exactly as the JSON API does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from smki.ra.forms import FormDefinition


@dataclass(frozen=True)
class Control:
    name: str
    title: str
    required: bool
    kind: str                         # text, textarea, number, select, checkbox, checkboxes, lines, numbers, roles
    options: tuple[str, ...] = ()
    hint: str = ""


def _control(name: str, spec: dict[str, Any], required: bool) -> Control:
    title = str(spec.get("title", name.replace("_", " ").capitalize()))
    kind = spec.get("type")
    if "enum" in spec:
        return Control(name, title, required, "select", tuple(str(v) for v in spec["enum"]))
    if spec.get("const") is True or kind == "boolean":
        return Control(name, title, required, "checkbox")
    if kind == "integer":
        return Control(name, title, required, "number")
    if kind == "array":
        items = spec.get("items", {})
        if "enum" in items:
            return Control(name, title, required, "checkboxes", tuple(str(v) for v in items["enum"]))
        if items.get("type") == "integer":
            return Control(name, title, required, "numbers", hint="numbers separated by commas")
        if items.get("type") == "object":
            return Control(name, title, required, "roles", hint="one per line: User Role, then its EUI-64 User ID")
        return Control(name, title, required, "lines", hint="one per line")
    return Control(name, title, required, "textarea" if int(spec.get("maxLength", 0)) > 200 else "text")


def controls(form: FormDefinition) -> list[Control]:
    return [_control(name, spec, required) for name, spec, required in form.fields]


def _number(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def payload(form: FormDefinition, posted: MultiDict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for control in controls(form):
        raw = posted.get(control.name, "")
        if control.kind == "checkbox":
            if posted.get(control.name) == "on":
                out[control.name] = True
            elif not control.required:
                out[control.name] = False
        elif control.kind == "checkboxes":
            chosen = posted.getlist(control.name)
            if chosen or control.required:
                out[control.name] = chosen
        elif not raw.strip():
            continue  # left empty: absent, so a required field is reported as missing
        elif control.kind == "number":
            out[control.name] = _number(raw)
        elif control.kind == "numbers":
            out[control.name] = [_number(part) for part in raw.split(",") if part.strip()]
        elif control.kind == "lines":
            out[control.name] = [line.strip() for line in raw.splitlines() if line.strip()]
        elif control.kind == "roles":
            roles = []
            for line in raw.splitlines():
                parts = line.split()
                if parts:
                    roles.append({"role": parts[0], **({"user_id": parts[1]} if len(parts) > 1 else {})})
            out[control.name] = roles
        else:
            out[control.name] = raw.strip()
    return out
