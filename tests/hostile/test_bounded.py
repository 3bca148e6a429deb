"""smki.core.bounded: any text from a URL becomes a number the database can hold, or a coded refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.exceptions import NotFound
from werkzeug.routing import Map, Rule

from smki.core.bounded import DATABASE_INTEGER_MAX, DatabaseIntegerConverter, PrintableTextConverter, parse_query_int
from smki.core.errors import SmkiError

NUMBERISH = st.one_of(st.text(max_size=30), st.integers().map(str), st.just("9" * 5000),
                      st.integers(min_value=0, max_value=DATABASE_INTEGER_MAX).map(str))


@given(NUMBERISH)
def test_a_query_value_is_a_number_in_range_or_a_coded_refusal(value: str) -> None:
    try:
        number = parse_query_int(value, field="role", code="RP:SRC7")
    except SmkiError as refusal:
        assert refusal.code == "RP:SRC7" and refusal.field == "role"
        return
    if value == "":
        assert number is None
    else:
        assert number is not None and 0 <= number <= DATABASE_INTEGER_MAX


def test_the_boundaries_of_a_query_value() -> None:
    assert parse_query_int(str(DATABASE_INTEGER_MAX), field="n", code="RP:SRC7") == DATABASE_INTEGER_MAX
    assert parse_query_int("0", field="n", code="RP:SRC7") == 0
    assert parse_query_int(None, field="n", code="RP:SRC7") is None
    for refused in (str(DATABASE_INTEGER_MAX + 1), "-1", " 1", "1.0", "\u0661", "+1", "0x1"):
        with pytest.raises(SmkiError):
            parse_query_int(refused, field="n", code="RP:SRC7")


ROUTES = Map([Rule("/n/<int:number>"), Rule("/t/<name>")],
             converters={"int": DatabaseIntegerConverter, "default": PrintableTextConverter})


@given(st.text(max_size=30).filter(lambda s: "/" not in s))
def test_a_path_number_matches_only_within_the_database_range(segment: str) -> None:
    try:
        _rule, values = ROUTES.bind("localhost").match(f"/n/{segment}")
    except NotFound:
        return
    assert 0 <= values["number"] <= DATABASE_INTEGER_MAX


@given(st.text(min_size=1, max_size=30).filter(lambda s: "/" not in s))
def test_a_path_segment_with_a_control_character_matches_no_route(segment: str) -> None:
    try:
        _rule, values = ROUTES.bind("localhost").match(f"/t/{segment}")
    except NotFound:
        assert any(ord(c) < 0x20 or ord(c) == 0x7F for c in segment)
        return
    assert all(ord(c) >= 0x20 and ord(c) != 0x7F for c in values["name"])
