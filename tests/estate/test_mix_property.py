"""``--types`` comes from whoever types the command: any text is a mix of known types or a coded refusal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.policy import load_policies
from smki.estate.plan import BAD_MIX, EstateError, parse_mix

POLICY = load_policies(DEFAULT_POLICIES_DIR).estate
pieces = st.one_of(st.sampled_from(["ESME", "GSME", "CHF", "PPMID", "=", ",", "0", "5", "-1", " ", "x", "=3"]),
                   st.text(max_size=6))


@given(st.lists(pieces, max_size=8).map("".join))
def test_any_types_text_is_a_mix_or_a_coded_refusal(text: str) -> None:
    try:
        mix = parse_mix(text, POLICY)
    except EstateError as refused:
        assert refused.code == BAD_MIX and refused.field == "types"
        return
    assert mix and set(mix) <= set(POLICY.device_types) and all(weight > 0 for weight in mix.values())


def test_the_default_mix_is_the_policys_weights() -> None:
    assert parse_mix(None, POLICY) == {"ESME": 5, "GSME": 4, "CHF": 1}
    assert parse_mix("ESME,CHF", POLICY) == {"ESME": 1, "CHF": 1}
