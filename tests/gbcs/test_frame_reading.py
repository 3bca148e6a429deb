"""The General Signing frame is read by a quick reader for well-formed APDUs and the general one for everything
else: the two must agree on every input the quick one accepts (same frame), and the quick one must accept
nothing the general one refuses. ``decode_framed`` must give what ``decode`` gives, with the frame the
signature is checked over."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smki.gbcs import (
    GbcsError,
    GeneralCiphering,
    GeneralSigning,
    decode,
    decode_framed,
    encode,
    verify_frame_signature,
    verify_signature,
)
from smki.gbcs.framing import _read_regular_frame, _read_signing_frame, locate_signing_frame
from tests.gbcs.strategies import KEYS, messages


def general(octets: bytes) -> object:
    try:
        return _read_signing_frame(octets, 0, len(octets))
    except GbcsError as error:
        return error.code


def agree(octets: bytes) -> None:
    quick = _read_regular_frame(octets, 0, len(octets))
    if quick is not None:
        assert general(octets) == quick


def signing_octets(message: GeneralCiphering | GeneralSigning) -> bytes:
    return encode(message.apdu if isinstance(message, GeneralCiphering) else message)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_the_quick_reader_reads_generated_apdus_as_the_general_one_does(
        message: GeneralCiphering | GeneralSigning) -> None:
    octets = signing_octets(message)
    quick = _read_regular_frame(octets, 0, len(octets))
    assert quick is not None and quick == general(octets)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.data())
def test_damaged_apdus_are_read_alike_or_left_to_the_general_reader(message: GeneralCiphering | GeneralSigning,
                                                                      data: st.DataObject) -> None:
    octets = bytearray(signing_octets(message))
    for _ in range(data.draw(st.integers(1, 3))):
        damage = data.draw(st.sampled_from(("flip", "cut", "append", "insert")))
        at = data.draw(st.integers(0, max(0, len(octets) - 1)))
        if damage == "flip" and octets:
            # The header and the lengths are where the readers decide; damage them most.
            at = data.draw(st.integers(0, min(len(octets) - 1, 40)))
            octets[at] = data.draw(st.integers(0, 255))
        elif damage == "cut":
            del octets[at:]
        elif damage == "append":
            octets += data.draw(st.binary(min_size=1, max_size=70))
        else:
            octets[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    agree(bytes(octets))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_any_octets_behind_a_signing_tag_are_read_alike(rest: bytes) -> None:
    agree(b"\xdf\x09" + rest)
    agree(b"\xdf" + rest)


def test_edge_lengths_are_read_alike() -> None:
    header = bytes.fromhex("df 09 01 0000000000000001 08 0011223344556677 08 8899aabbccddeeff 00 02 0108")
    assert _read_regular_frame(header + b"\x01\x30", 0, len(header) + 2) is not None
    for length_octets in (b"\x7f", b"\x80", b"\x81\x7f", b"\x81\x80", b"\x82\x00\x80", b"\x82\x01\x00",
                          b"\x83\x00\x01\x00"):
        for tail in (b"", b"\x00", b"\x40", b"\x40" + bytes(64), b"\x40" + bytes(63), b"\x01\x00", b"\x00\x00"):
            for size in (0x7F, 0x80, 0x100, 0x101):
                agree(header + length_octets + bytes(size) + tail)
    dated = header[:30] + b"\x0c" + bytes(12) + header[31:]
    agree(dated + b"\x01\x30")
    agree(header[:30] + b"\x0b" + bytes(11) + header[31:] + b"\x01\x30")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_decode_framed_gives_what_decode_gives_and_the_frame_the_signature_covers(
        message: GeneralCiphering | GeneralSigning) -> None:
    octets = encode(message)
    decoded, frame = decode_framed(octets)
    assert decoded == decode(octets)
    assert frame == locate_signing_frame(octets)
    for key in KEYS:
        try:
            verify_signature(octets, key.public_key())
        except GbcsError as error:
            expected: str | None = error.code
        else:
            expected = None
        try:
            verify_frame_signature(octets, frame, key.public_key())
        except GbcsError as error:
            assert error.code == expected
        else:
            assert expected is None
