"""The CS02b ASN.1 structures (GBCS ASN.1 module, field names kept), as asn1crypto classes.

Tags are implicit and context-specific where the module gives them. A certificate is carried as an
opaque TLV (``core.Any``): the codec never parses the X.509 inside, which keeps a decode of an
eight-certificate recovery command to a walk over its headers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from asn1crypto import core


class KeyUsage(core.BitString):
    _map: ClassVar[dict[int, str]] = {0: "digital_signature", 4: "key_agreement", 5: "key_cert_sign", 6: "crl_sign"}


class TrustAnchorCellIdentifier(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("trust_anchor_cell_remote_party_role", core.Integer),
        ("trust_anchor_cell_key_usage", KeyUsage),
        ("trust_anchor_cell_usage", core.Integer, {"optional": True}),
    ]


class SpecialistSeqNumber(core.Sequence):
    _fields: ClassVar[list[Any]] = [("seq_number_usage", core.Integer), ("seq_number", core.Integer)]


class SpecialistSeqNumbers(core.SequenceOf):
    _child_spec = SpecialistSeqNumber


class RemotePartySeqNumberChange(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("remote_party_role", core.Integer),
        ("floor_seq_number", core.Integer),
        ("specialist_floor_seq_number", SpecialistSeqNumbers, {"optional": True}),
    ]


class RemotePartySeqNumberChanges(core.SequenceOf):
    _child_spec = RemotePartySeqNumberChange


class AuthorisingRemotePartyControl(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("credentials_replacement_mode", core.Integer),
        ("plaintext_symmetric_key", core.OctetString, {"implicit": 0, "optional": True}),
        ("apply_time_based_cpv_checks", core.Integer, {"implicit": 1, "optional": True}),
        ("authorising_remote_party_ta_cell_identifier", TrustAnchorCellIdentifier,
         {"implicit": 2, "optional": True}),
        ("authorising_remote_party_seq_number", core.Integer, {"implicit": 3}),
        ("new_remote_party_floor_seq_number", core.Integer, {"implicit": 4, "optional": True}),
        ("new_remote_party_specialist_floor_seq_number", SpecialistSeqNumbers,
         {"implicit": 5, "optional": True}),
        ("other_remote_party_seq_number_changes", RemotePartySeqNumberChanges,
         {"implicit": 6, "optional": True}),
    ]


# An X.509 certificate, kept as its DER octets.
Certificate = core.Any


class Certificates(core.SequenceOf):
    _child_spec = Certificate


class TrustAnchorReplacement(core.Sequence):
    _fields: ClassVar[list[Any]] = [("replacement_certificate", Certificate),
               ("target_trust_anchor_cell_identifier", TrustAnchorCellIdentifier)]


class TrustAnchorReplacements(core.SequenceOf):
    _child_spec = TrustAnchorReplacement


class UpdateSecurityCredentials(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("authorising_remote_party_control", AuthorisingRemotePartyControl),
        ("replacements", TrustAnchorReplacements),
        ("certification_path_certificates", Certificates),
        ("execution_date_time", core.GeneralizedTime, {"optional": True}),
    ]


class StatusCode(core.Enumerated):
    _map: ClassVar[dict[int, str]] = {
        0: "success", 5: "bad_certificate", 10: "no_trust_anchor", 17: "insufficient_memory",
        25: "trust_anchor_not_found", 30: "resources_busy", 127: "other"}


class ReplacementOutcome(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("affected_trust_anchor_cell", TrustAnchorCellIdentifier),
        ("status_code", StatusCode),
        ("existing_subject_unique_id", core.OctetString),
        ("existing_subject_key_identifier", core.OctetString),
        ("replacing_subject_unique_id", core.OctetString),
        ("replacing_subject_key_identifier", core.OctetString),
    ]


class ReplacementOutcomes(core.SequenceOf):
    _child_spec = ReplacementOutcome


class UpdateSecurityCredentialsExecutionOutcome(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("authorising_remote_party_seq_number", core.Integer),
        ("credentials_replacement_mode", core.Integer),
        ("remote_party_seq_number_changes", RemotePartySeqNumberChanges),
        ("replacement_outcomes", ReplacementOutcomes),
    ]


class UpdateSecurityCredentialsRsp(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("command_accepted", core.Null),
        ("execution_outcome", UpdateSecurityCredentialsExecutionOutcome, {"optional": True}),
    ]


class UpdateSecurityCredentialsAlert(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("alert_code", core.Integer),
        ("execution_date_time", core.GeneralizedTime),
        ("execution_outcome", UpdateSecurityCredentialsExecutionOutcome),
    ]
