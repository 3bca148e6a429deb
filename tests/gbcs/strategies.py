"""Hypothesis strategies for CS02b values: every mode, every optional field, both length styles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from smki.core.eui64 import Eui64
from smki.gbcs import (
    AuthorisingRemotePartyControl,
    CellUsage,
    CpvTimeChecks,
    CraFlag,
    CredentialsReplacementMode,
    ExecutionOutcome,
    GeneralCiphering,
    GeneralSigning,
    GroupingHeader,
    KeyUsage,
    LengthEncoding,
    RemotePartyRole,
    RemotePartySeqNumberChange,
    ReplacementOutcome,
    SeqNumberUsage,
    SpecialistSeqNumber,
    StatusCode,
    TrustAnchorCell,
    TrustAnchorReplacement,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
)

KEYS = tuple(ec.generate_private_key(ec.SECP256R1()) for _ in range(2))


def _certificate(key: ec.EllipticCurvePrivateKey, name: str) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime(2024, 1, 1, tzinfo=UTC)
    built = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now)
             .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256()))
    return built.public_bytes(serialization.Encoding.DER)


CERTIFICATES = tuple(_certificate(key, f"T{index}") for index, key in enumerate(KEYS))

counters = st.integers(min_value=0, max_value=(1 << 64) - 1)
euis = st.binary(min_size=8, max_size=8).map(Eui64)
key_usages = st.sampled_from([KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_AGREEMENT, KeyUsage.KEY_CERT_SIGN,
                              KeyUsage.KEY_CERT_SIGN | KeyUsage.CRL_SIGN])
cells = st.builds(TrustAnchorCell, st.sampled_from(RemotePartyRole), key_usages, st.sampled_from(CellUsage))
specialists = st.lists(st.builds(SpecialistSeqNumber, st.sampled_from(SeqNumberUsage), counters),
                       max_size=2).map(tuple)
changes = st.lists(st.builds(RemotePartySeqNumberChange, st.sampled_from(RemotePartyRole), counters,
                             st.none() | specialists), max_size=3).map(tuple)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                       timezones=st.just(UTC)).map(lambda moment: moment.replace(microsecond=0))
controls = st.builds(AuthorisingRemotePartyControl, st.sampled_from(CredentialsReplacementMode), counters,
                     st.none() | st.binary(min_size=16, max_size=32), st.none() | st.sampled_from(CpvTimeChecks),
                     st.none() | cells, st.none() | counters, st.none() | specialists, st.none() | changes)
commands = st.builds(
    UpdateSecurityCredentials, controls,
    st.lists(st.builds(TrustAnchorReplacement, st.sampled_from(CERTIFICATES), cells), min_size=1, max_size=4)
    .map(tuple),
    st.lists(st.sampled_from(CERTIFICATES), max_size=3).map(tuple), st.none() | moments)
subject_ids = st.binary(min_size=0, max_size=8)
outcomes = st.builds(ExecutionOutcome, counters, st.sampled_from(CredentialsReplacementMode), changes,
                     st.lists(st.builds(ReplacementOutcome, cells, st.sampled_from(StatusCode), subject_ids,
                                        subject_ids, subject_ids, subject_ids), max_size=9).map(tuple))
date_times = st.none() | st.binary(min_size=12, max_size=12)


@st.composite
def messages(draw: st.DrawFn) -> GeneralCiphering | GeneralSigning:
    """A message of any kind, as a device or a sender could build it (signatures are random octets)."""
    kind = draw(st.sampled_from(CraFlag))
    encoding = LengthEncoding.DER
    payload: UpdateSecurityCredentials | UpdateSecurityCredentialsResponse | UpdateSecurityCredentialsAlert
    if kind is CraFlag.COMMAND:
        payload = draw(commands)
        code = payload.mode.message_code
    else:
        encoding = draw(st.sampled_from(LengthEncoding))
        outcome = draw(outcomes)
        if kind is CraFlag.RESPONSE:
            payload = UpdateSecurityCredentialsResponse(draw(st.none() | st.just(outcome)))
            code = outcome.mode.message_code
        else:
            payload = UpdateSecurityCredentialsAlert(draw(st.sampled_from((0x8F66, 0x8F67))), draw(moments), outcome)
            code = 0x00CB
    header = GroupingHeader(kind, draw(counters), draw(euis), draw(euis), code, draw(date_times))
    pre_command = kind is CraFlag.COMMAND and draw(st.booleans())
    signature = None if pre_command else draw(st.none() | st.binary(min_size=64, max_size=64))
    apdu = GeneralSigning(header, payload, signature, pre_command, encoding)
    if kind is CraFlag.COMMAND and not pre_command and draw(st.booleans()):
        return GeneralCiphering(apdu, draw(st.binary(min_size=12, max_size=12)),
                                draw(st.integers(min_value=0, max_value=0xFFFFFFFF)))
    return apdu
