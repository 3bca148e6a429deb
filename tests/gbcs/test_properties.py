"""Properties: any octets give a value or a coded GbcsError; generated messages round-trip exactly."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smki.gbcs import (
    CODES,
    GbcsError,
    GeneralCiphering,
    GeneralSigning,
    decode,
    decode_alert,
    decode_command,
    decode_response,
    encode,
    from_hex,
)
from tests.gbcs.strategies import messages

DECODERS = (decode, decode_command, decode_response, decode_alert)


def decodes_or_refuses(octets: bytes) -> None:
    for decoder in DECODERS:
        try:
            value = decoder(octets)
        except GbcsError as error:
            assert error.code in CODES, error.code
        else:
            assert value is not None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_octets_decode_or_are_refused_with_a_code(octets: bytes) -> None:
    decodes_or_refuses(octets)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from((b"\xdf\x09", b"\xdd\x00\x00\x00\x00\x00\x00", b"\x30")), st.binary(max_size=200))
def test_octets_that_start_like_a_message_decode_or_are_refused(prefix: bytes, rest: bytes) -> None:
    decodes_or_refuses(prefix + rest)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_generated_messages_round_trip(message: GeneralCiphering | GeneralSigning) -> None:
    octets = encode(message)
    decoded = decode(octets)
    assert decoded == message
    assert encode(decoded) == octets


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.data())
def test_damaged_messages_decode_or_are_refused(message: GeneralCiphering | GeneralSigning,
                                                data: st.DataObject) -> None:
    octets = bytearray(encode(message))
    how = data.draw(st.sampled_from(("truncate", "flip", "insert", "append")))
    where = data.draw(st.integers(min_value=0, max_value=len(octets) - 1))
    if how == "truncate":
        del octets[where:]
    elif how == "flip":
        octets[where] ^= data.draw(st.integers(min_value=1, max_value=255))
    elif how == "insert":
        octets[where:where] = data.draw(st.binary(min_size=1, max_size=4))
    else:
        octets += data.draw(st.binary(min_size=1, max_size=4))
    try:
        decoded = decode(bytes(octets))
    except GbcsError as error:
        assert error.code in CODES
    else:  # a change the codec cannot see (inside a signature, a MAC, a subject ID) still round-trips
        assert isinstance(decoded, GeneralCiphering | GeneralSigning)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_hex_text_reads_or_is_refused(text: str) -> None:
    try:
        from_hex(text)
    except GbcsError as error:
        assert error.code == "GB:E018"


def test_payload_decoders_take_any_bytes_like_value_and_refuse_the_rest() -> None:
    null_response = bytes.fromhex("30020500")
    for octets in (null_response, bytearray(null_response), memoryview(null_response)):
        assert decode_response(octets).outcome is None
    for wrong in ("30020500", None, 5):
        try:
            decode_alert(wrong)  # type: ignore[arg-type]
        except GbcsError as error:
            assert error.code == "GB:E021"
        else:
            raise AssertionError(f"{wrong!r} was decoded")
