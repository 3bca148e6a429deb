"""A posted HTML form becomes the JSON payload the form's schema checks."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from smki.ra.forms import forms_dir, load_forms
from smki.ra.web.form_fields import controls, payload


def definition(name: str):  # type: ignore[no-untyped-def]
    return load_forms(forms_dir())[name]


def test_user_roles_numbers_and_choices_become_their_json_types():
    form = definition("party_registration")
    kinds = {c.name: c.kind for c in controls(form)}
    assert kinds["user_roles"] == "roles"

    made = payload(form, MultiDict({"user_roles": "IS 90-B3-D5-1F-30-01-00-00\nGS\n"}))

    assert made["user_roles"] == [{"role": "IS", "user_id": "90-B3-D5-1F-30-01-00-00"}, {"role": "GS"}]


def test_empty_fields_are_absent_and_unconvertible_numbers_are_passed_on_for_the_schema_to_report():
    form = definition("aro_nomination")
    posted = MultiDict([("organisation_id", "twelve"), ("scopes", "device"), ("scopes", "repository"),
                        ("acts_for", "3, x"), ("name", "  ")])

    made = payload(form, posted)

    assert made["organisation_id"] == "twelve" and made["acts_for"] == [3, "x"]
    assert made["scopes"] == ["device", "repository"]
    assert "name" not in made
