"""A stored device processes CS02b commands as GBCS section 5 says (issue 13 item 3): recovery (mode 8) and
contingency (mode 9) commands signed with the sandbox's own Recovery and Contingency keys, refusals that change
nothing, per-cell statuses, and damaged octets answered by a coded refusal, never an exception."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from repository.store import CertificateRepository
from smki.bootstrap import CONTINGENCY_KEY, CONTINGENCY_WRAPPING_KEY, RECOVERY_KEY
from smki.ca.contingency import wrap_contingency_key
from smki.core.eui64 import Eui64
from smki.estate import processor
from smki.estate.device import DeviceState
from smki.estate.faults import Fault
from smki.estate.jobs import EstateJobs
from smki.estate.models import EstateDevice
from smki.estate.processing import deliver, device_state
from smki.estate.processor import process, run_due
from smki.gbcs import (
    AuthorisingRemotePartyControl,
    CellUsage,
    CredentialsReplacementMode,
    GbcsError,
    GeneralSigning,
    KeyUsage,
    RemotePartyRole,
    StatusCode,
    TrustAnchorCell,
    TrustAnchorReplacement,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
    build,
    decode,
    encode,
    sign,
    verify_signature,
)
from smki.instance import Instance
from tests.estate.conftest import Population, issue_organisation

Role = RemotePartyRole
NOW = dt.datetime.now(dt.UTC)
USAGE = {"digitalSignature": KeyUsage.DIGITAL_SIGNATURE, "keyAgreement": KeyUsage.KEY_AGREEMENT}
MODE8 = CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY
MODE9 = CredentialsReplacementMode.ANY_BY_CONTINGENCY


@dataclass
class Estate:
    instance: Instance
    device_id: str
    cells: list[list]        # as stored
    fresh: dict[tuple[int, str, int], bytes]   # a new certificate for each Organisation cell of the device


@pytest.fixture
def estate(instance: Instance, population: Population, jobs: EstateJobs) -> Estate:
    jobs.service.create_run(2, types="ESME")
    jobs.run_pending()
    with instance.database.session() as session:
        row = session.execute(select(EstateDevice).order_by(EstateDevice.number)).scalars().first()
        assert row is not None
        device_id, cells = row.device_id, json.loads(row.cells)
    from smki.estate import views
    view = views.show(instance, device_id)
    fresh: dict[tuple[int, str, int], bytes] = {}
    issued: dict[tuple[str, str, str], list[bytes]] = {}
    for (role, usage, cell_usage, _anchor, _state), cell_view in zip(cells, view.cells, strict=True):
        if role in (0, 1):
            continue
        assert cell_view.subject_eui is not None
        issue_organisation(instance, cell_view.subject_eui, f"{role:02X}", [usage], issued)
        fresh[(role, usage, cell_usage)] = issued[(cell_view.subject_eui, f"{role:02X}", usage)][-1]
    return Estate(instance, device_id, cells, fresh)


def _cell(role: int, usage: str, cell_usage: int = 0) -> TrustAnchorCell:
    return TrustAnchorCell(Role(role), USAGE.get(usage, KeyUsage.KEY_CERT_SIGN),
                           CellUsage(cell_usage))


def _issuing_oca(instance: Instance) -> bytes:
    return instance.hierarchy.certificate("issuing_oca").public_bytes(Encoding.DER)


def recovery_command(estate: Estate, counter: int, replacements: list[TrustAnchorReplacement],
                     key: ec.EllipticCurvePrivateKey | None = None, path: tuple[bytes, ...] | None = None,
                     execution: dt.datetime | None = None) -> bytes:
    instance = estate.instance
    payload = UpdateSecurityCredentials(
        AuthorisingRemotePartyControl(MODE8, counter, authorising_cell=_cell(1, "digitalSignature")),
        tuple(replacements), path if path is not None else (_issuing_oca(instance),), execution)
    pre = build.command(instance.policies.environment.dcc_entity_identifiers["recovery"],
                        Eui64.parse(estate.device_id), counter, payload)
    return encode(sign(pre, key or instance.keystore.signer(RECOVERY_KEY)))


def every_organisation_cell(estate: Estate) -> list[TrustAnchorReplacement]:
    return [TrustAnchorReplacement(der, _cell(*key)) for key, der in estate.fresh.items()]


def stored(estate: Estate) -> tuple[str, str]:
    with estate.instance.database.session() as session:
        row = session.execute(select(EstateDevice).where(EstateDevice.device_id == estate.device_id)).scalar_one()
        return row.cells, row.counters


def device_certificate(estate: Estate) -> x509.Certificate:
    with estate.instance.database.session() as session:
        serial = session.scalar(select(EstateDevice.ds_serial).where(EstateDevice.device_id == estate.device_id))
    assert serial is not None
    record = CertificateRepository(estate.instance.database).get(serial)
    assert record is not None and record.der is not None
    return x509.load_der_x509_certificate(record.der)


def response_of(estate: Estate, answer: bytes | None) -> UpdateSecurityCredentialsResponse:
    assert answer is not None
    public = device_certificate(estate).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    verify_signature(answer, public)   # signed with the device's own DS key
    message = decode(answer)
    assert isinstance(message, GeneralSigning) and isinstance(message.payload, UpdateSecurityCredentialsResponse)
    assert message.header.business_originator.hex == estate.device_id
    return message.payload


def test_a_recovery_command_replaces_every_cell_and_cannot_be_replayed(estate: Estate) -> None:
    command = recovery_command(estate, 100, every_organisation_cell(estate))
    [delivered] = deliver(estate.instance.database, {estate.device_id: command}, NOW)
    assert delivered.processed.refusal is None
    response = response_of(estate, delivered.processed.answer)
    assert response.outcome is not None
    assert [o.status for o in response.outcome.outcomes] == [StatusCode.SUCCESS] * len(estate.fresh)
    cells, counters = stored(estate)
    held = {(role, usage, cell_usage): (anchor, state) for role, usage, cell_usage, anchor, state in json.loads(cells)}
    for key in estate.fresh:
        assert held[key][1] == "replaced"
    assert json.loads(counters)["1"] == 100
    # the new certificates are what the device holds now
    state = device_state_of(estate)
    for key, der in estate.fresh.items():
        cell = state.cell(_cell(*key))
        assert cell is not None and cell.anchor == der

    before = stored(estate)
    [replayed] = deliver(estate.instance.database, {estate.device_id: command}, NOW)
    assert replayed.processed.refusal is not None and replayed.processed.refusal.code == processor.REPLAY
    assert replayed.processed.answer is None
    assert stored(estate) == before


def device_state_of(estate: Estate) -> DeviceState:
    from smki.estate.models import EstateAnchor
    with estate.instance.database.session() as session:
        row = session.execute(select(EstateDevice).where(EstateDevice.device_id == estate.device_id)).scalar_one()
        anchors = {anchor_id: der for anchor_id, der in session.execute(select(EstateAnchor.id, EstateAnchor.der))}
        return device_state(row, anchors)


def test_refusals_leave_the_cells_as_they_were(estate: Estate) -> None:
    before = stored(estate)
    # signed by a key that is not the Recovery key: refused outright
    forged = recovery_command(estate, 200, every_organisation_cell(estate), key=ec.generate_private_key(ec.SECP256R1()))
    [result] = deliver(estate.instance.database, {estate.device_id: forged}, NOW)
    assert result.processed.refusal is not None and result.processed.refusal.code == processor.SIGNATURE
    assert stored(estate) == before

    # a supplier's signing certificate offered for the network operator's signing cell: badCertificate
    supplier_ds = estate.fresh[(2, "digitalSignature", 0)]
    wrong_role = recovery_command(estate, 201, [TrustAnchorReplacement(supplier_ds, _cell(3, "digitalSignature"))])
    [result] = deliver(estate.instance.database, {estate.device_id: wrong_role}, NOW)
    response = response_of(estate, result.processed.answer)
    assert response.outcome is not None
    assert [o.status for o in response.outcome.outcomes] == [StatusCode.BAD_CERTIFICATE]
    outcome = response.outcome.outcomes[0]
    assert outcome.replacing_subject_key_id == outcome.existing_subject_key_id   # nothing placed
    # a key usage that does not match the cell: badCertificate too
    supplier_ka = estate.fresh[(2, "keyAgreement", 0)]
    wrong_usage = recovery_command(estate, 202, [TrustAnchorReplacement(supplier_ka, _cell(2, "digitalSignature"))])
    [result] = deliver(estate.instance.database, {estate.device_id: wrong_usage}, NOW)
    response = response_of(estate, result.processed.answer)
    assert response.outcome is not None and response.outcome.outcomes[0].status is StatusCode.BAD_CERTIFICATE

    # chained to another root: noTrustAnchor
    other_root, other_issuing, stranger = foreign_hierarchy(supplier_ds)
    foreign = recovery_command(estate, 203, [TrustAnchorReplacement(stranger, _cell(2, "digitalSignature"))],
                               path=(other_issuing,))
    [result] = deliver(estate.instance.database, {estate.device_id: foreign}, NOW)
    response = response_of(estate, result.processed.answer)
    assert response.outcome is not None and response.outcome.outcomes[0].status is StatusCode.NO_TRUST_ANCHOR
    # the root cell is not the Recovery key's to replace (mode 8): other (127)
    root_swap = recovery_command(estate, 204, [TrustAnchorReplacement(other_root, _cell(0, "keyCertSign"))])
    [result] = deliver(estate.instance.database, {estate.device_id: root_swap}, NOW)
    response = response_of(estate, result.processed.answer)
    assert response.outcome is not None and response.outcome.outcomes[0].status is StatusCode.OTHER

    cells, counters = stored(estate)
    assert cells == before[0]                       # no cell changed
    assert json.loads(counters)["1"] == 204         # each accepted command consumed its sequence number


def foreign_hierarchy(like: bytes) -> tuple[bytes, bytes, bytes]:
    """A root, an issuing CA and an Organisation Certificate shaped like ``like``, under a root the device does
    not hold."""
    template = x509.load_der_x509_certificate(like)
    root_key, issuing_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Elsewhere Root")])
    issuing_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Elsewhere Issuing")])
    root = ca_certificate(root_name, root_name, root_key.public_key(), root_key)
    issuing = ca_certificate(issuing_name, root_name, issuing_key.public_key(), root_key)
    public = template.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    leaf = (x509.CertificateBuilder().subject_name(template.subject).issuer_name(issuing_name)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=365))
            .add_extension(template.extensions.get_extension_for_class(x509.KeyUsage).value, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(issuing_key, hashes.SHA256()))
    return (root.public_bytes(Encoding.DER), issuing.public_bytes(Encoding.DER), leaf.public_bytes(Encoding.DER))


def ca_certificate(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey,
                   signer: ec.EllipticCurvePrivateKey,
                   extra: list[x509.ExtensionType] | None = None) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, False, False, False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))
    for extension in extra or []:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(signer, hashes.SHA256())


def contingency_command(estate: Estate, counter: int, symmetric_key: bytes) -> tuple[bytes, bytes]:
    """A mode 9 command placing a new root (which wraps the Contingency key again) and the returned root."""
    instance = estate.instance
    contingency = instance.keystore.signer(CONTINGENCY_KEY)
    new_root_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sandbox Root after contingency")])
    wrapped = wrap_contingency_key(contingency.public_key(), instance.custody.get_secret(CONTINGENCY_WRAPPING_KEY))
    new_root = ca_certificate(name, name, new_root_key.public_key(), new_root_key, [
        x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.20"), wrapped)]).public_bytes(Encoding.DER)
    payload = UpdateSecurityCredentials(
        AuthorisingRemotePartyControl(MODE9, counter, plaintext_symmetric_key=symmetric_key),
        (TrustAnchorReplacement(new_root, _cell(0, "keyCertSign")),), ())
    pre = build.command(instance.policies.environment.dcc_entity_identifiers["recovery"],
                        Eui64.parse(estate.device_id), counter, payload)
    return encode(sign(pre, contingency)), new_root


def test_a_contingency_command_replaces_the_root_only_with_the_right_symmetric_key(estate: Estate) -> None:
    instance = estate.instance
    before = stored(estate)
    wrong, _ = contingency_command(estate, 10, bytes(32))
    [result] = deliver(instance.database, {estate.device_id: wrong}, NOW)
    assert result.processed.refusal is not None and result.processed.refusal.code == processor.SIGNATURE
    assert stored(estate) == before

    right, new_root = contingency_command(estate, 11, instance.custody.get_secret(CONTINGENCY_WRAPPING_KEY))
    [result] = deliver(instance.database, {estate.device_id: right}, NOW)
    response = response_of(estate, result.processed.answer)
    assert response.outcome is not None
    assert [o.status for o in response.outcome.outcomes] == [StatusCode.SUCCESS]
    root = device_state_of(estate).cell(_cell(0, "keyCertSign"))
    assert root is not None and root.anchor == new_root and root.state == "replaced"
    # certificates under the old root no longer chain to the device's root
    later = recovery_command(estate, 300, [TrustAnchorReplacement(estate.fresh[(2, "digitalSignature", 0)],
                                                                  _cell(2, "digitalSignature"))])
    [result] = deliver(instance.database, {estate.device_id: later}, NOW)
    response = response_of(estate, result.processed.answer)
    assert response.outcome is not None and response.outcome.outcomes[0].status is StatusCode.NO_TRUST_ANCHOR


def test_faults_and_future_dated_commands(estate: Estate) -> None:
    state = device_state_of(estate)
    command = recovery_command(estate, 50, every_organisation_cell(estate))
    offline = process(_with(state, Fault.OFFLINE), command, NOW)
    assert offline.refusal is not None and offline.refusal.code == processor.OFFLINE and offline.answer is None
    lost = process(_with(state, Fault.COMMAND_LOST), command, NOW)
    assert lost.refusal is not None and lost.refusal.code == processor.LOST
    assert process(lost.state, command, NOW).refusal is None       # only one command is lost
    for fault, status in ((Fault.BUSY, StatusCode.RESOURCES_BUSY),
                          (Fault.OUT_OF_MEMORY, StatusCode.INSUFFICIENT_MEMORY)):
        result = process(_with(state, fault), command, NOW)
        response = response_of(estate, result.answer)
        assert response.outcome is not None and {o.status for o in response.outcome.outcomes} == {status}
        assert result.state.cells == state.cells
    stale = process(_with(state, 0, cell_state="stale"), command, NOW)
    assert stale.refusal is not None and stale.refusal.code == processor.SIGNATURE   # the recovery cell is stale

    later = NOW + dt.timedelta(days=2)
    future = recovery_command(estate, 60, every_organisation_cell(estate), execution=later)
    accepted = process(state, future, NOW)
    response = response_of(estate, accepted.answer)
    assert response.outcome is None and accepted.state.cells == state.cells and len(accepted.state.pending) == 1
    assert process(accepted.state, future, NOW).refusal is not None               # replay of the accepted one
    waiting, none_yet = run_due(accepted.state, NOW)
    assert none_yet == [] and waiting.pending == accepted.state.pending
    ran, [alert] = run_due(accepted.state, later)
    message = decode(alert)
    assert isinstance(message, GeneralSigning) and isinstance(message.payload, UpdateSecurityCredentialsAlert)
    assert message.payload.alert_code == 0x8F66
    assert {o.status for o in message.payload.outcome.outcomes} == {StatusCode.SUCCESS}
    assert ran.pending == () and ran.cells != state.cells


def _with(state: DeviceState, faults: int, cell_state: str | None = None) -> DeviceState:
    import dataclasses
    cells = state.cells if cell_state is None else tuple(
        c if c.role == 0 else dataclasses.replace(c, state=cell_state) for c in state.cells)
    return dataclasses.replace(state, faults=faults, cells=cells)


def test_damaged_or_arbitrary_octets_get_a_coded_refusal_and_change_nothing(estate: Estate) -> None:
    state = device_state_of(estate)
    command = recovery_command(estate, 70, every_organisation_cell(estate))

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data: st.DataObject) -> None:
        choice = data.draw(st.sampled_from(["random", "flip", "cut", "extend"]))
        if choice == "random":
            octets = data.draw(st.binary(max_size=300))
        elif choice == "flip":
            index = data.draw(st.integers(0, len(command) - 1))
            octets = command[:index] + bytes((command[index] ^ data.draw(st.integers(1, 255)),)) + command[index + 1:]
        elif choice == "cut":
            octets = command[:data.draw(st.integers(0, len(command) - 1))]
        else:
            octets = command + data.draw(st.binary(min_size=1, max_size=8))
        result = process(state, octets, NOW)
        assert result.refusal is not None and result.answer is None
        assert result.refusal.code.startswith(("GB:E", "ES:PRC"))
        assert result.state == state

    check()
    # and through the store: a damaged command changes no stored cell
    before = stored(estate)
    [result] = deliver(estate.instance.database, {estate.device_id: command[:-1] + b"\x00"}, NOW)
    assert result.processed.refusal is not None
    assert stored(estate) == before


def _holding(state: DeviceState, role: int, usage: str, key: ec.EllipticCurvePrivateKey) -> DeviceState:
    """The device with its (role, usage) management cell holding a certificate of ``key``."""
    import dataclasses
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test {role} {usage}")])
    usage_flags = {"digitalSignature": (True, False), "keyAgreement": (False, True)}[usage]
    der = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
           .serial_number(x509.random_serial_number())
           .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=365))
           .add_extension(x509.KeyUsage(usage_flags[0], False, False, False, usage_flags[1], False, False, False,
                                        False), critical=True)
           .sign(key, hashes.SHA256()).public_bytes(Encoding.DER))
    cells = tuple(dataclasses.replace(c, anchor=der) if (c.role, c.key_usage, c.cell_usage) == (role, usage, 0)
                  else c for c in state.cells)
    return dataclasses.replace(state, cells=cells)


def test_modes_that_need_the_acbs_mac_are_refused_without_it(estate: Estate) -> None:
    from smki.gbcs import wrap_with_mac
    acb, supplier = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    state = _holding(_holding(device_state_of(estate), 4, "keyAgreement", acb), 2, "digitalSignature", supplier)
    device_ka = state.ka_key()
    assert device_ka is not None
    payload = UpdateSecurityCredentials(
        AuthorisingRemotePartyControl(CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER, 5),
        (TrustAnchorReplacement(estate.fresh[(2, "keyAgreement", 0)], _cell(2, "keyAgreement")),),
        (_issuing_oca(estate.instance),))
    signed = sign(build.command(Eui64.parse("90B3D51F30010000"), Eui64.parse(estate.device_id), 5, payload), supplier)
    wrapped = encode(wrap_with_mac(signed, acb, device_ka.public_key()))

    accepted = process(state, wrapped, NOW)
    response = response_of(estate, accepted.answer)
    assert response.outcome is not None and [o.status for o in response.outcome.outcomes] == [StatusCode.SUCCESS]
    assert accepted.state.counters[2] == 5

    bare = process(state, encode(signed), NOW)
    assert bare.refusal is not None and bare.refusal.code == processor.WRAPPING
    stranger = encode(wrap_with_mac(signed, ec.generate_private_key(ec.SECP256R1()), device_ka.public_key()))
    forged = process(state, stranger, NOW)
    assert forged.refusal is not None and forged.refusal.code == processor.WRAPPING and forged.state == state
    flipped = wrapped[:-1] + bytes((wrapped[-1] ^ 1,))
    assert process(state, flipped, NOW).refusal is not None
    # a recovery command does not travel inside the ACB's wrapper
    recovery = decode(recovery_command(estate, 80, every_organisation_cell(estate)))
    assert isinstance(recovery, GeneralSigning)
    inside = process(state, encode(wrap_with_mac(recovery, acb, device_ka.public_key())), NOW)
    assert inside.refusal is not None and inside.refusal.code == processor.WRAPPING


def test_a_delivery_is_whole_or_nothing(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    from smki.estate import processing
    with estate.instance.database.session() as session:
        ids = list(session.scalars(select(EstateDevice.device_id).order_by(EstateDevice.number)))
    commands = {}
    for device_id in ids:
        estate.device_id = device_id
        commands[device_id] = recovery_command(estate, 90, [TrustAnchorReplacement(
            estate.fresh[(2, "digitalSignature", 0)], _cell(2, "digitalSignature"))])
    with estate.instance.database.session() as session:
        before = [(r.cells, r.counters) for r in session.execute(select(EstateDevice).order_by(EstateDevice.number))
                  .scalars()]
    saved = processing._save
    calls: list[int] = []

    def crash_on_the_second(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        saved(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(processing, "_save", crash_on_the_second)
    with pytest.raises(RuntimeError):
        deliver(estate.instance.database, commands, NOW)
    with estate.instance.database.session() as session:
        after = [(r.cells, r.counters) for r in session.execute(select(EstateDevice).order_by(EstateDevice.number))
                 .scalars()]
    assert after == before        # the first device's change was rolled back with the second's
    monkeypatch.setattr(processing, "_save", saved)
    results = deliver(estate.instance.database, commands, NOW)
    assert all(r.processed.refusal is None for r in results)


def test_damaged_certificates_in_a_signed_command_are_refused_cell_by_cell(estate: Estate) -> None:
    state = device_state_of(estate)
    good = estate.fresh[(2, "digitalSignature", 0)]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(
        st.binary(max_size=120).map(lambda body: b"\x30" + bytes((len(body),)) + body),
        st.tuples(st.integers(4, len(good) - 1), st.integers(1, 255)).map(
            lambda change: good[:change[0]] + bytes((good[change[0]] ^ change[1],)) + good[change[0] + 1:])))
    def check(certificate: bytes) -> None:
        try:
            command = recovery_command(estate, 500, [TrustAnchorReplacement(certificate, _cell(2, "digitalSignature"))])
        except GbcsError:   # the codec will not carry what is not a DER SEQUENCE: nothing to send
            return
        result = process(state, command, NOW)
        assert result.refusal is None
        assert result.outcomes[0].status in (StatusCode.BAD_CERTIFICATE, StatusCode.NO_TRUST_ANCHOR)
        assert result.state.cells == state.cells

    check()


def test_a_stored_future_dated_command_runs_at_its_time_and_raises_the_alert(estate: Estate) -> None:
    from smki.estate.processing import run_due_commands
    database = estate.instance.database
    later = NOW + dt.timedelta(days=2)
    future = recovery_command(estate, 70, every_organisation_cell(estate), execution=later)
    cells_before, _ = stored(estate)
    [accepted] = deliver(database, {estate.device_id: future}, NOW)
    response = response_of(estate, accepted.processed.answer)
    assert response.outcome is None and accepted.alerts == ()
    cells, counters = stored(estate)
    assert cells == cells_before and json.loads(counters)["1"] == 70    # accepted, not run; counter consumed
    assert len(device_state_of(estate).pending) == 1                    # kept in the database

    assert run_due_commands(database, NOW + dt.timedelta(days=1)) == {}   # not yet
    assert stored(estate)[0] == cells_before
    due = run_due_commands(database, later)
    [alert] = due[estate.device_id]
    public = device_certificate(estate).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    verify_signature(alert, public)
    message = decode(alert)
    assert isinstance(message, GeneralSigning) and isinstance(message.payload, UpdateSecurityCredentialsAlert)
    assert message.payload.alert_code == 0x8F66
    assert {o.status for o in message.payload.outcome.outcomes} == {StatusCode.SUCCESS}
    state = device_state_of(estate)
    assert state.pending == () and state.alerts_sent == 1
    for key, der in estate.fresh.items():
        cell = state.cell(_cell(*key))
        assert cell is not None and cell.anchor == der and cell.state == "replaced"
    assert run_due_commands(database, later + dt.timedelta(days=1)) == {}   # ran once


def test_a_due_command_runs_before_the_next_command_delivered(estate: Estate) -> None:
    database = estate.instance.database
    later = NOW + dt.timedelta(hours=1)
    deliver(database, {estate.device_id: recovery_command(estate, 80, every_organisation_cell(estate),
                                                           execution=later)}, NOW)
    # the next command arrives after the first came due: the device ran the first at its time, then this one
    [delivered] = deliver(database, {estate.device_id: recovery_command(estate, 90, [])},
                          later + dt.timedelta(minutes=1))
    [alert] = delivered.alerts
    message = decode(alert)
    assert isinstance(message, GeneralSigning) and isinstance(message.payload, UpdateSecurityCredentialsAlert)
    assert message.payload.alert_code == 0x8F66
    assert delivered.processed.refusal is None
    assert device_state_of(estate).pending == ()
