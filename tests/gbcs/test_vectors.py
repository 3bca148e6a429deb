"""The codec against the DCC's own CS02b vectors (RTDS 4.5.0): decode, re-encode, signatures, MAC, outcomes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from smki.gbcs import (
    ALERT_FUTURE_DATED_FAILURE,
    ALERT_FUTURE_DATED_SUCCESS,
    CellUsage,
    CpvTimeChecks,
    CraFlag,
    CredentialsReplacementMode,
    GbcsError,
    GeneralCiphering,
    GeneralSigning,
    KeyUsage,
    LengthEncoding,
    RemotePartyRole,
    StatusCode,
    TrustAnchorCell,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
    decode,
    encode,
    sign,
    signer_among,
    verify_mac,
    verify_signature,
    wrap_with_mac,
)
from tests.gbcs.conftest import acb_ka_private_key, device_ka_public_key, ds_certificates, private_key

RECOVERY_COMMAND = "CS02bAnyExceptAbnormalRootByRecovery_NA_SUCCESS_COMMAND_GBCS.HEX"
RECOVERY_RESPONSE = "CS02bAnyExceptAbnormalRootByRecovery_NA_SUCCESS_RESPONSE_GBCS.HEX"
SUPPLIER_COMMAND = "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
SUPPLIER_PRECOMMAND = "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_PRECOMMAND_GBCS.HEX"
ACB_COMMAND = "CS02bACBByACB_8.5_SUCCESS_COMMAND_GBCS.HEX"
SUPPLIER_DS_KEY = "org-Z1-supplier-90b3d51f30010000-ds-2015-4fbc5252.key.pem"


def apdu_of(message: GeneralCiphering | GeneralSigning) -> GeneralSigning:
    return message.apdu if isinstance(message, GeneralCiphering) else message


def test_every_vector_decodes_and_re_encodes_to_the_same_octets(vectors: dict[str, bytes]) -> None:
    for name, octets in vectors.items():
        message = decode(octets)
        assert encode(message) == octets, name


def test_each_vector_is_the_kind_its_name_says(vectors: dict[str, bytes]) -> None:
    for name, octets in vectors.items():
        message = decode(octets)
        apdu = apdu_of(message)
        if "_COMMAND_" in name:
            assert isinstance(message, GeneralCiphering) == ("ByRecovery" not in name), name
            assert isinstance(apdu.payload, UpdateSecurityCredentials) and apdu.header.cra_flag is CraFlag.COMMAND
        elif "_PRECOMMAND_" in name:
            assert isinstance(message, GeneralSigning) and message.pre_command and message.signature is None, name
        elif "_RESPONSE_" in name:
            assert isinstance(apdu.payload, UpdateSecurityCredentialsResponse), name
            assert apdu.header.cra_flag is CraFlag.RESPONSE and apdu.header.date_time is not None
        else:
            assert "_ALERT_" in name and isinstance(apdu.payload, UpdateSecurityCredentialsAlert), name


def test_every_signature_verifies_with_the_dcc_test_certificates(vectors: dict[str, bytes],
                                                                 interop_dir: Path) -> None:
    checked = 0
    for name, octets in vectors.items():
        apdu = apdu_of(decode(octets))
        if apdu.signature is None:
            assert name in (ACB_COMMAND,) or "_PRECOMMAND_" in name, f"{name} should be signed"
            continue
        originator = apdu.header.business_originator.hex.lower()
        signer = signer_among(octets, ds_certificates(interop_dir, originator))
        assert signer is not None, f"{name}: no DCC test DS certificate of {originator} verifies it"
        checked += 1
        # the value path (re-encoding) agrees with the octets path
        key = signer.public_key()
        verify_signature(apdu, key)  # type: ignore[arg-type]
    assert checked == 19  # 26 vectors less 6 pre-commands and the ACB's MAC-only command


def test_a_tampered_payload_fails_the_signature(vectors: dict[str, bytes], interop_dir: Path) -> None:
    octets = bytearray(vectors[RECOVERY_COMMAND])
    octets[200] ^= 0x01  # inside a replacement certificate: still decodes, no longer verifies
    (signer,) = ds_certificates(interop_dir, "90b3d51f30000001")[:1]
    with pytest.raises(GbcsError) as refused:
        verify_signature(bytes(octets), signer.public_key())  # type: ignore[arg-type]
    assert refused.value.code == "GB:E019"


def test_the_acb_command_carries_no_signature(vectors: dict[str, bytes], interop_dir: Path) -> None:
    message = decode(vectors[ACB_COMMAND])
    assert isinstance(message, GeneralCiphering)
    assert message.apdu.signature is None and not message.apdu.pre_command
    assert message.apdu.payload.mode is CredentialsReplacementMode.ACCESS_CONTROL_BROKER_BY_ACB  # type: ignore[union-attr]
    (acb,) = ds_certificates(interop_dir, "90b3d51f30000002")[:1]
    with pytest.raises(GbcsError) as refused:
        verify_signature(vectors[ACB_COMMAND], acb.public_key())  # type: ignore[arg-type]
    assert refused.value.code == "GB:E023"


def test_the_supplier_command_mac_is_reproduced_from_the_acb_and_device_keys(vectors: dict[str, bytes],
                                                                             interop_dir: Path) -> None:
    message = decode(vectors[SUPPLIER_COMMAND])
    assert isinstance(message, GeneralCiphering)
    rebuilt = wrap_with_mac(message.apdu, acb_ka_private_key(interop_dir), device_ka_public_key(interop_dir))
    assert rebuilt.mac == message.mac
    assert encode(rebuilt) == vectors[SUPPLIER_COMMAND]


def test_every_mac_verifies_and_a_changed_octet_does_not(vectors: dict[str, bytes], interop_dir: Path) -> None:
    acb, device = acb_ka_private_key(interop_dir), device_ka_public_key(interop_dir)
    wrapped = [name for name, octets in vectors.items() if octets[0] == 0xDD]
    assert len(wrapped) == 7
    for name in wrapped:
        verify_mac(vectors[name], acb, device)
        verify_mac(decode(vectors[name]), acb, device)  # type: ignore[arg-type]
    tampered = bytearray(vectors[SUPPLIER_COMMAND])
    tampered[40] ^= 0x80  # in the General Signing header: the originator counter
    with pytest.raises(GbcsError) as refused:
        verify_mac(bytes(tampered), acb, device)
    assert refused.value.code == "GB:E020"


def test_the_pre_command_is_the_command_before_signing(vectors: dict[str, bytes], interop_dir: Path) -> None:
    command = decode(vectors[SUPPLIER_COMMAND])
    pre = decode(vectors[SUPPLIER_PRECOMMAND])
    assert isinstance(command, GeneralCiphering) and isinstance(pre, GeneralSigning)
    assert pre == replace(command.apdu, signature=None, pre_command=True)
    signed = sign(pre, private_key(interop_dir, SUPPLIER_DS_KEY))
    supplier_ds = x509.load_pem_x509_certificate(
        (interop_dir / "org" / "org-Z1-supplier-90b3d51f30010000-ds-2015-4fbc5252.pem").read_bytes())
    verify_signature(encode(signed), supplier_ds.public_key())  # type: ignore[arg-type]


def test_the_recovery_command_is_read_field_by_field(vectors: dict[str, bytes]) -> None:
    message = decode(vectors[RECOVERY_COMMAND])
    assert isinstance(message, GeneralSigning)
    header, command = message.header, message.payload
    assert isinstance(command, UpdateSecurityCredentials)
    assert (header.originator_counter, header.business_originator.hex, header.business_target.hex,
            header.message_code) == (7000, "90B3D51F30000001", "00DB1234567890A0", 0x0108)
    control = command.control
    assert control.mode is CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY
    assert control.seq_number == 7000 and control.time_based_cpv_checks is CpvTimeChecks.DISAPPLY
    assert control.authorising_cell == TrustAnchorCell(RemotePartyRole.RECOVERY, KeyUsage.DIGITAL_SIGNATURE)
    assert control.new_floor_seq_number == 0 and control.plaintext_symmetric_key is None
    assert [cell.target_cell for cell in command.replacements] == RECOVERY_CELLS
    assert len(command.certification_path) == 1
    issuing_oca = x509.load_der_x509_certificate(command.certification_path[0])
    assert issuing_oca.subject.rfc4514_string() == "CN=Z1,OU=07"
    assert command.execution_date_time is None


RECOVERY_CELLS = [
    TrustAnchorCell(RemotePartyRole.RECOVERY, KeyUsage.DIGITAL_SIGNATURE),
    TrustAnchorCell(RemotePartyRole.SUPPLIER, KeyUsage.DIGITAL_SIGNATURE),
    TrustAnchorCell(RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT),
    TrustAnchorCell(RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP),
    TrustAnchorCell(RemotePartyRole.NETWORK_OPERATOR, KeyUsage.DIGITAL_SIGNATURE),
    TrustAnchorCell(RemotePartyRole.NETWORK_OPERATOR, KeyUsage.KEY_AGREEMENT),
    TrustAnchorCell(RemotePartyRole.ACCESS_CONTROL_BROKER, KeyUsage.KEY_AGREEMENT),
    TrustAnchorCell(RemotePartyRole.TRANSITIONAL_COS, KeyUsage.DIGITAL_SIGNATURE),
]


def test_the_recovery_response_per_cell_outcomes(vectors: dict[str, bytes]) -> None:
    command = decode(vectors[RECOVERY_COMMAND])
    response = decode(vectors[RECOVERY_RESPONSE])
    assert isinstance(command, GeneralSigning) and isinstance(response, GeneralSigning)
    assert isinstance(command.payload, UpdateSecurityCredentials)
    assert isinstance(response.payload, UpdateSecurityCredentialsResponse)
    header = response.header
    assert (header.originator_counter, header.business_originator, header.business_target) == (
        7000, command.header.business_target, command.header.business_originator)
    outcome = response.payload.outcome
    assert outcome is not None
    assert outcome.seq_number == 7000
    assert outcome.mode is CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY
    assert [change.role for change in outcome.seq_number_changes] == [
        RemotePartyRole.RECOVERY, RemotePartyRole.SUPPLIER, RemotePartyRole.NETWORK_OPERATOR,
        RemotePartyRole.ACCESS_CONTROL_BROKER, RemotePartyRole.TRANSITIONAL_COS]
    assert [item.cell for item in outcome.outcomes] == RECOVERY_CELLS
    assert {item.status for item in outcome.outcomes} == {StatusCode.SUCCESS}
    # Each cell now holds the certificate the command placed there: subject ID and SKI agree.
    for item, replacement in zip(outcome.outcomes, command.payload.replacements, strict=True):
        placed = x509.load_der_x509_certificate(replacement.certificate)
        ski = placed.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert item.replacing_subject_key_id == ski
        assert item.replacing_subject_id.hex() in placed.subject.rfc4514_string().lower()


def test_error_outcomes_name_the_cell_that_failed(vectors: dict[str, bytes]) -> None:
    contingency = apdu_of(decode(vectors["CS02bAnyByContingency_NA_ERROR_RESPONSE_GBCS.HEX"])).payload
    supplier = apdu_of(decode(vectors["CS02bSupplierBySupplier_6.15.1_IMMEDIATE_ERROR_RESPONSE_GBCS.HEX"])).payload
    assert isinstance(contingency, UpdateSecurityCredentialsResponse) and contingency.outcome is not None
    assert isinstance(supplier, UpdateSecurityCredentialsResponse) and supplier.outcome is not None
    failed = [(item.cell, item.status) for item in contingency.outcome.outcomes
              if item.status is not StatusCode.SUCCESS]
    assert failed == [(TrustAnchorCell(RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP),
                       StatusCode.NO_TRUST_ANCHOR)]
    assert contingency.outcome.outcomes[0].cell == TrustAnchorCell(RemotePartyRole.ROOT, KeyUsage.KEY_CERT_SIGN)
    failed = [(item.cell, item.status) for item in supplier.outcome.outcomes
              if item.status is not StatusCode.SUCCESS]
    assert failed == [(TrustAnchorCell(RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT), StatusCode.NO_TRUST_ANCHOR)]
    # A failed cell keeps what it had: existing and replacing identify the same key.
    (item,) = [item for item in supplier.outcome.outcomes if item.status is StatusCode.NO_TRUST_ANCHOR]
    assert item.existing_subject_key_id == item.replacing_subject_key_id


def test_future_dated_commands_and_their_alerts(vectors: dict[str, bytes]) -> None:
    command = decode(vectors["CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX"])
    accepted = apdu_of(decode(vectors["CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_RESPONSE_GBCS.HEX"]))
    assert isinstance(command, GeneralCiphering) and isinstance(command.apdu.payload, UpdateSecurityCredentials)
    assert command.apdu.payload.execution_date_time == datetime(2030, 1, 15, tzinfo=UTC)
    assert accepted.payload == UpdateSecurityCredentialsResponse(outcome=None)
    for name, code in (("8F66_FUTURE_DATED_SUCCESS", ALERT_FUTURE_DATED_SUCCESS),
                       ("8F67_FUTURE_DATED_ERROR", ALERT_FUTURE_DATED_FAILURE)):
        alert = apdu_of(decode(vectors[f"CS02bSupplierBySupplier_6.15.1_{name}_ALERT_GBCS.HEX"]))
        assert isinstance(alert.payload, UpdateSecurityCredentialsAlert)
        assert alert.payload.alert_code == code
        assert alert.payload.execution_date_time == datetime(2030, 1, 15, tzinfo=UTC)
        assert alert.header.message_code == 0x00CB and alert.header.cra_flag is CraFlag.ALERT
        assert alert.length_encoding is LengthEncoding.LONG_TWO_OCTETS


def test_the_device_length_style_is_kept_and_der_is_the_default(vectors: dict[str, bytes]) -> None:
    response = decode(vectors["CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX"])
    assert isinstance(response, GeneralSigning) and response.length_encoding is LengthEncoding.LONG_TWO_OCTETS
    as_der = replace(response, length_encoding=LengthEncoding.DER)
    octets = encode(as_der)
    assert len(octets) < len(vectors["CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX"])
    assert decode(octets) == as_der
