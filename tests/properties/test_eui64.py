"""Property tests of EUI-64 parsing (smki/core/eui64.py): every textual form of every identifier parses back
to it, and any other text is refused with the coded InvalidEui64 (still a ValueError for its callers)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smki.core.errors import CODE_PATTERN
from smki.core.eui64 import INVALID_EUI64, Eui64, InvalidEui64
from tests.properties.conftest import eui64s

WHITESPACE = st.sampled_from(("", " ", "\t", "\n", "\r\n", "  "))


def renderings(eui: Eui64) -> set[str]:
    """Every textual form the parser accepts, upper case."""
    pairs = [f"{b:02X}" for b in eui.value]
    return {"".join(pairs), *(separator.join(pairs) for separator in "-: ")}


@st.composite
def textual_forms(draw: st.DrawFn, eui: Eui64) -> str:
    form = draw(st.sampled_from(sorted(renderings(eui))))
    form = "".join(c.lower() if draw(st.booleans()) else c for c in form)
    return draw(WHITESPACE) + form + draw(WHITESPACE)


def refused(text: object) -> InvalidEui64:
    with pytest.raises(InvalidEui64) as caught:
        Eui64.parse(text)  # type: ignore[arg-type]
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.code == INVALID_EUI64 and CODE_PATTERN.match(error.code) and len(error.code) <= 10
    assert error.message.strip()
    return error


@settings(max_examples=300, deadline=None)
@given(data=st.data(), eui=eui64s)
def test_every_textual_form_round_trips(data, eui):
    assert Eui64.parse(data.draw(textual_forms(eui))) == eui
    assert Eui64.parse(eui.hex) == eui
    assert Eui64.parse(eui.hyphenated) == eui
    assert Eui64.parse(str(eui)) == eui


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40) | st.text(alphabet="0123456789abcdefABCDEF-: \t\n", max_size=30))
def test_any_text_parses_only_if_it_is_a_textual_form(text):
    try:
        eui = Eui64.parse(text)
    except InvalidEui64:
        refused(text)
        return
    assert text.strip().upper() in renderings(eui)


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """A textual form with one character inserted, deleted or replaced: the typo a person makes."""
    form = draw(st.sampled_from(sorted(renderings(draw(eui64s)))))
    at = draw(st.integers(0, len(form)))
    operation = draw(st.sampled_from(("insert", "delete", "replace")))
    character = draw(st.characters(codec="utf-8") | st.sampled_from("-: 0Fg"))
    if operation == "insert":
        return form[:at] + character + form[at:]
    if operation == "delete":
        return form[:at] + form[at + 1:]
    return form[:at] + character + form[at + 1:]


@settings(max_examples=300, deadline=None)
@given(text=near_misses())
def test_a_near_miss_is_refused_unless_it_is_still_a_textual_form(text):
    try:
        eui = Eui64.parse(text)
    except InvalidEui64:
        return
    assert text.strip().upper() in renderings(eui)


@settings(max_examples=50, deadline=None)
@given(value=st.none() | st.integers() | st.binary(max_size=16) | st.lists(st.integers(), max_size=3))
def test_a_value_that_is_not_text_is_refused_with_the_code(value):
    refused(value)


@settings(max_examples=50, deadline=None)
@given(octets=st.binary(max_size=16))
def test_only_eight_octets_make_an_eui64(octets):
    assume(len(octets) != 8)
    with pytest.raises(InvalidEui64):
        Eui64(octets)


@pytest.mark.parametrize("text", [
    "90-B3:D5-1F-30-01-00-00",     # separators mixed
    "90--B3-D5-1F-30-01-00-00",    # doubled
    "9-0B3D51F30010000",           # inside a pair
    "90B3D51F30010000-",           # trailing
    "90B3-D51F-3001-0000",         # groups of four
    "90B3D51F3001000\n0",          # a line break inside
])
def test_looser_forms_are_refused(text):
    """Accepted before (every separator was simply deleted): more likely a mistyped identifier than a form."""
    refused(text)
