"""Building, signing and MAC-wrapping commands in all ten modes, answering them, and refusing bad input."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from smki.core.eui64 import Eui64
from smki.gbcs import (
    CODES,
    AuthorisingRemotePartyControl,
    CredentialsReplacementMode,
    ExecutionOutcome,
    GbcsError,
    GeneralCiphering,
    GeneralSigning,
    KeyUsage,
    LengthEncoding,
    RemotePartyRole,
    ReplacementOutcome,
    StatusCode,
    TrustAnchorCell,
    TrustAnchorReplacement,
    UpdateSecurityCredentials,
    build,
    decode,
    decode_command,
    decode_response,
    encode,
    parse_dlms_date_time,
    sign,
    verify_mac,
    verify_signature,
    wrap_with_mac,
)
from smki.gbcs.errors import CODES as CATALOGUE
from tests.gbcs.strategies import CERTIFICATES

SUPPLIER = Eui64.parse("90B3D51F30010000")
DEVICE = Eui64.parse("00DB1234567890A0")
SIGNER = ec.generate_private_key(ec.SECP256R1())
ACB_KA = ec.generate_private_key(ec.SECP256R1())
DEVICE_KA = ec.generate_private_key(ec.SECP256R1())
SUPPLIER_DS = TrustAnchorCell(RemotePartyRole.SUPPLIER, KeyUsage.DIGITAL_SIGNATURE)


def payload(mode: CredentialsReplacementMode, **control: object) -> UpdateSecurityCredentials:
    return UpdateSecurityCredentials(
        control=AuthorisingRemotePartyControl(mode=mode, seq_number=1001, **control),  # type: ignore[arg-type]
        replacements=(TrustAnchorReplacement(CERTIFICATES[0], SUPPLIER_DS),), certification_path=(CERTIFICATES[1],))


@pytest.mark.parametrize("mode", list(CredentialsReplacementMode))
def test_a_command_in_every_mode_is_signed_wrapped_and_read_back(mode: CredentialsReplacementMode) -> None:
    extra = {"plaintext_symmetric_key": bytes(32)} if mode is CredentialsReplacementMode.ANY_BY_CONTINGENCY else {}
    pre = build.command(SUPPLIER, DEVICE, 1001, payload(mode, **extra))
    assert pre.pre_command and pre.header.message_code == 0x0100 + mode.value
    apdu = sign(pre, SIGNER) if mode.signature_required else replace(pre, pre_command=False)
    message: GeneralSigning | GeneralCiphering = (
        wrap_with_mac(apdu, ACB_KA, DEVICE_KA.public_key()) if mode.mac_required else apdu)
    octets = encode(message)
    assert octets[0] == (0xDD if mode.mac_required else 0xDF)
    decoded = decode(octets)
    assert decoded == message and encode(decoded) == octets
    if mode.signature_required:
        verify_signature(octets, SIGNER.public_key())
    if mode.mac_required:
        verify_mac(octets, DEVICE_KA, ACB_KA.public_key())  # the device's side of the same agreement


def test_a_device_response_and_alert_answer_the_command() -> None:
    command = sign(build.command(SUPPLIER, DEVICE, 1001, payload(CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER)),
                   SIGNER)
    outcome = ExecutionOutcome(1001, CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER, (), (
        ReplacementOutcome(SUPPLIER_DS, StatusCode.SUCCESS, SUPPLIER.value, bytes(8), SUPPLIER.value,
                           bytes(range(8))),))
    at = datetime(2026, 12, 3, 15, 4, 5, 670000, tzinfo=UTC)
    answer = sign(build.response(command.header, outcome, at, LengthEncoding.LONG_TWO_OCTETS), SIGNER)
    assert (answer.header.business_originator, answer.header.business_target) == (DEVICE, SUPPLIER)
    assert parse_dlms_date_time(answer.header.date_time or b"") == at
    assert decode(encode(answer)) == answer
    alert = build.alert(DEVICE, SUPPLIER, 7, at, outcome)
    assert decode(encode(alert)) == alert


def refused(octets: bytes) -> str:
    with pytest.raises(GbcsError) as error:
        decode(octets)
    return error.value.code


# DF, transaction ID (1 + 9), originator and target (2 x (1 + 8)), empty date-time (1): other information next
OTHER_INFORMATION = 1 + 10 + 18 + 1
SIGNED = encode(sign(build.command(SUPPLIER, DEVICE, 1001, payload(CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER)),
                     SIGNER))
WRAPPED = encode(wrap_with_mac(decode(SIGNED), ACB_KA, DEVICE_KA.public_key()))  # type: ignore[arg-type]


def test_bad_framing_gets_the_code_that_names_it() -> None:
    assert refused(b"") == "GB:E001"
    assert refused(SIGNED[:-1]) == "GB:E001"  # inside the signature
    assert refused(SIGNED[:30]) == "GB:E001"
    assert refused(SIGNED + b"\x00") == "GB:E002"
    assert refused(WRAPPED + b"\x00") == "GB:E002"
    assert refused(b"\x30\x00") == "GB:E003"
    assert refused(b"\xdd\x01\x00\x00\x00\x00\x00\x05") == "GB:E004"
    assert refused(WRAPPED[:10] + b"\x12" + WRAPPED[11:]) == "GB:E004"  # security control
    assert refused(b"\xdf\x84" + bytes(20)) == "GB:E005"
    assert refused(b"\xdf\x08" + SIGNED[2:]) == "GB:E006"  # transaction ID of 8
    assert refused(SIGNED[:2] + b"\x04" + SIGNED[3:]) == "GB:E007"  # CRA flag 04
    code_at = OTHER_INFORMATION + 1
    assert SIGNED[OTHER_INFORMATION:OTHER_INFORMATION + 3] == bytes.fromhex("020102")
    assert refused(SIGNED[:code_at] + b"\x00\x07" + SIGNED[code_at + 2:]) == "GB:E008"  # message code 0007
    assert refused(SIGNED[:code_at] + b"\x01\x03" + SIGNED[code_at + 2:]) == "GB:E009"  # says mode 3


def sequence(*parts: str | bytes) -> bytes:
    body = b"".join(part if isinstance(part, bytes) else bytes.fromhex(part) for part in parts)
    return b"\x30" + bytes((len(body),)) + body


def test_bad_payloads_get_the_code_that_names_them() -> None:
    # A minimal command payload: control { mode, [3] seq 0 }, no replacements, no path.
    def command(mode: str, cell: str = "") -> bytes:
        control = bytes.fromhex(f"0201{mode}830100")
        replacement = bytes.fromhex(cell)
        body = (b"\x30" + bytes((len(control),)) + control + b"\x30" + bytes((len(replacement),)) + replacement
                + b"\x30\x00")
        return b"\x30" + bytes((len(body),)) + body

    for octets, code in (
        (command("0a"), "GB:E011"),  # mode 10
        (command("02", "3010" + "3003020101" + "3009020109030207800201" + "01"), "GB:E010"),  # cell too short
        (command("02", "3011" + "3003020101" + "300a020109030207800201" + "01"), "GB:E012"),  # role 9
        (command("02", "3011" + "3003020101" + "300a020102030205200201" + "01"), "GB:E013"),  # keyEncipherment
        (command("02", "3011" + "3003020101" + "300a020102030207800201" + "05"), "GB:E014"),  # cell usage 5
        (command("02", "3011" + "0403020101" + "300a020102030207800201" + "01"), "GB:E017"),  # not a SEQUENCE
        (command("02") + b"\x00", "GB:E010"),  # trailing octets inside the payload
        (command("02")[:-1], "GB:E010"),  # truncated payload
    ):
        with pytest.raises(GbcsError) as error:
            decode_command(octets)
        assert error.value.code == code, octets.hex()
    # a status code GBCS does not define
    with pytest.raises(GbcsError) as error:
        decode_response(sequence("0500", sequence("020100", "020102", "3000", sequence(sequence(
            "300702010203020780", "0a0102", "0400", "0400", "0400", "0400")))))
    assert error.value.code == "GB:E015"


def test_encoders_refuse_values_they_cannot_write() -> None:
    good = decode(SIGNED)
    assert isinstance(good, GeneralSigning) and isinstance(good.payload, UpdateSecurityCredentials)
    odd_path = replace(good.payload, certification_path=(b"\x04\x00",))
    for bad, code in (
        (replace(good, signature=b"short"), "GB:E021"),
        (replace(good, header=replace(good.header, originator_counter=-1)), "GB:E021"),
        (replace(good, header=replace(good.header, message_code=0x0103)), "GB:E009"),
        (replace(good, payload=odd_path), "GB:E017"),
    ):
        with pytest.raises(GbcsError) as error:
            encode(bad)
        assert error.value.code == code
    with pytest.raises(GbcsError) as error:
        sign(good, ec.generate_private_key(ec.SECP384R1()))
    assert error.value.code == "GB:E022"
    for wrong in (None, "DF09", 5):
        with pytest.raises(GbcsError) as error:
            verify_signature(wrong, SIGNER.public_key())  # type: ignore[arg-type]
        assert error.value.code == "GB:E021"
        with pytest.raises(GbcsError) as error:
            verify_mac(wrong, DEVICE_KA, ACB_KA.public_key())  # type: ignore[arg-type]
        assert error.value.code == "GB:E021"


def test_every_code_is_in_the_catalogue_and_the_docs(tmp_path: Path) -> None:
    assert CODES is CATALOGUE
    docs = (Path(__file__).resolve().parents[2] / "docs" / "gbcs.md").read_text()
    for code in CODES:
        assert f"`{code}`" in docs, f"{code} is missing from docs/gbcs.md"
