"""What a delivery works out once for the devices of a chunk (the decoded payload, each replacement's checks and
their response payload, the signing cell's key) never lets through a command that a device on its own would
refuse: every device checks its own command's signature and anti-replay counter, and a command whose payload
differs from its neighbours' is executed as its own."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import select

from smki.bootstrap import RECOVERY_KEY
from smki.estate import processor
from smki.estate.device import IdentityMemo
from smki.estate.jobs import EstateJobs
from smki.estate.models import EstateAnchor, EstateDevice
from smki.estate.processing import deliver, device_state
from smki.estate.processor import process
from smki.estate.sending import FAILED, RECOVERED, REFUSED, CommandSender, Device, Keys, Order
from smki.estate.testkeys import TestKeyStore
from smki.gbcs import (
    GeneralSigning,
    StatusCode,
    TrustAnchorReplacement,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsResponse,
    build,
    decode,
    encode,
    sign,
)
from smki.instance import Instance
from smki.ra.demo import seed_demo

ROLES = ("supplier", "networkOperator")


@pytest.fixture
def estate(instance: Instance, jobs: EstateJobs) -> Instance:
    seed_demo(instance)
    TestKeyStore(instance).issue_test_credentials()
    jobs.service.create_run(12, types="ESME")
    jobs.run_pending()
    return instance


def stored(instance: Instance) -> dict[str, tuple[str, str]]:
    with instance.database.session() as session:
        return {d: (cells, counters) for d, cells, counters in session.execute(
            select(EstateDevice.device_id, EstateDevice.cells, EstateDevice.counters))}


def flip(octets: bytes, at: int) -> bytes:
    damaged = bytearray(octets)
    damaged[at] ^= 0x01
    return bytes(damaged)


def test_tampered_commands_in_the_middle_of_a_chunk_are_refused_and_their_neighbours_recovered(
        estate: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = CommandSender(estate)
    original = sender.command
    built: list[tuple[str, bytes]] = []
    # By the order the commands are built: the 2nd with its signature damaged, the 3rd with a certificate of its
    # payload damaged (it still decodes: the last octet of the certification path's signature), the 4th given
    # the 1st device's command (signed, but for another device), the 5th signed by the right key over a
    # payload its neighbours never saw (re-signed after the damage). The rest as built.
    recovery = estate.keystore.signer(RECOVERY_KEY)

    def resigned(octets: bytes) -> bytes:
        damaged = decode(flip(octets, len(octets) - 66))
        assert isinstance(damaged, GeneralSigning)
        return encode(sign(build.command(damaged.header.business_originator, damaged.header.business_target,
                                         damaged.header.originator_counter, damaged.payload), recovery))

    tampering: dict[int, Callable[[bytes], bytes]] = {
        1: lambda octets: flip(octets, len(octets) - 1),
        2: lambda octets: flip(octets, len(octets) - 66),
        3: lambda _octets: built[0][1],
        4: resigned,
    }

    def command(order: Order, keys: Keys, device: Device, device_ka: object) -> bytes:
        octets = original(order, keys, device, device_ka)  # type: ignore[arg-type]
        octets = tampering.get(len(built), lambda same: same)(octets)
        built.append((device.device_id, octets))
        return octets

    monkeypatch.setattr(sender, "command", command)
    before = stored(estate)
    report = sender.send("recovery", ROLES, chunk_size=50, collect_outcomes=True)
    after = stored(estate)

    assert len(built) == 12
    outcomes = {device_id: report.outcomes[device_id] for device_id, _ in built}
    order = [device_id for device_id, _ in built]
    assert outcomes[order[1]].status == REFUSED and outcomes[order[1]].code == processor.SIGNATURE
    assert outcomes[order[2]].status == REFUSED and outcomes[order[2]].code == processor.SIGNATURE
    assert outcomes[order[3]].status == REFUSED and outcomes[order[3]].code == processor.NOT_FOR_THIS_DEVICE
    for device_id in order[1:4]:
        assert after[device_id] == before[device_id]          # nothing of a refused command is kept
    # The re-signed command is authentic: its device runs its own payload, in which the damaged path
    # certificate no longer chains the replacements to the root.
    assert outcomes[order[4]].status == FAILED and set(outcomes[order[4]].codes.values()) == {
        int(StatusCode.NO_TRUST_ANCHOR)}
    assert json.loads(after[order[4]][1])["1"] > json.loads(before[order[4]][1]).get("1", 0)
    assert json.loads(after[order[4]][0]) == json.loads(before[order[4]][0])
    for device_id in order[:1] + order[5:]:
        assert outcomes[device_id].status == RECOVERED, outcomes[device_id]
        assert after[device_id][0] != before[device_id][0]
    assert report.verified == 12 - 3

    # Delivered again, as they were: every device's counter refuses its command (or its signature, as before).
    again = deliver(estate.database, dict(built), dt.datetime.now(dt.UTC))
    codes = Counter(item.processed.refusal.code for item in again if item.processed.refusal is not None)
    assert codes == {processor.REPLAY: 12 - 3, processor.SIGNATURE: 2, processor.NOT_FOR_THIS_DEVICE: 1}
    assert stored(estate) == after


def test_devices_sharing_their_cells_each_run_their_own_payload(estate: Instance) -> None:
    """Devices read in one chunk share their cells' tuple; a neighbour whose command places a certificate in
    the wrong role's cell gets that cell refused, and the others are not affected by it."""
    with estate.database.session() as session:
        rows = list(session.execute(select(EstateDevice).order_by(EstateDevice.number)).scalars())
        anchors = {a.id: (a.serial, a.subject_eui, a.der) for a in session.execute(
            select(EstateAnchor.id, EstateAnchor.serial, EstateAnchor.subject_eui, EstateAnchor.der))}
    groups: dict[str, list[EstateDevice]] = {}
    for row in rows:
        groups.setdefault(row.cells, []).append(row)
    group = max(groups.values(), key=len)
    assert len(group) >= 3, "the estate has no three devices with the same cells"
    read: dict[str, object] = {}
    ders = {anchor_id: der for anchor_id, (_serial, _eui, der) in anchors.items()}
    states = [device_state(row, ders, read) for row in group[:3]]
    assert states[0].cells is states[1].cells is states[2].cells   # what the shared work is keyed by

    sender = CommandSender(estate)
    order = sender.order("recovery", ROLES)
    keys = sender.keys(order)
    commands = [sender.command(order, keys, Device(row.device_id, row.ds_serial, row.ka_serial,
                                                   json.loads(row.cells), anchors), None) for row in group[:3]]
    middle = decode(commands[1])
    assert isinstance(middle, GeneralSigning) and isinstance(middle.payload, UpdateSecurityCredentials)
    payload = middle.payload
    # the Recovery certificate (role 01) in the first replacement's cell (a supplier or network operator cell)
    wrong = (TrustAnchorReplacement(sender.recovery_certificate, payload.replacements[0].target_cell),
             *payload.replacements[1:])
    header = middle.header
    commands[1] = encode(sign(build.command(header.business_originator, header.business_target,
                                            header.originator_counter,
                                            UpdateSecurityCredentials(payload.control, wrong,
                                                                      payload.certification_path)),
                              estate.keystore.signer(RECOVERY_KEY)))

    now = dt.datetime.now(dt.UTC)
    results = [process(state, octets, now) for state, octets in zip(states, commands, strict=True)]
    statuses = [[o.status for o in result.outcomes] for result in results]
    assert statuses[0] == statuses[2] == [StatusCode.SUCCESS] * len(payload.replacements)
    assert statuses[1] == [StatusCode.BAD_CERTIFICATE] + [StatusCode.SUCCESS] * (len(payload.replacements) - 1)
    assert results[0].state.cells is results[2].state.cells      # the same work, shared
    assert results[1].state.cells != results[0].state.cells
    for result, state in zip(results, states, strict=True):
        answer = decode(result.answer or b"")
        assert isinstance(answer, GeneralSigning) and isinstance(answer.payload, UpdateSecurityCredentialsResponse)
        assert answer.header.business_originator.value == state.device_id
        assert [o.status for o in answer.payload.outcome.outcomes] == [o.status for o in result.outcomes]  # type: ignore[union-attr]
    # and each device's counter is its own: the first command again is refused by the first device only
    again = process(results[0].state, commands[0], now)
    assert again.refusal is not None and again.refusal.code == processor.REPLAY
    assert process(results[2].state, commands[2], now).refusal is not None


def test_the_identity_memo_keeps_results_by_the_very_values() -> None:
    memo: IdentityMemo[int] = IdentityMemo(size=2)
    made: list[tuple[int, ...]] = []

    def make(value: tuple[int, ...]) -> Callable[[], int]:
        return lambda: made.append(value) or sum(value)

    first, equal = (1, 2), tuple([1, 2])
    assert memo.get((first,), None, make(first)) == 3
    assert memo.get((first,), None, make(first)) == 3 and made == [first]          # kept
    assert memo.get((first,), "other", make(first)) == 3 and len(made) == 2       # the extra key counts
    other = (5, 6)
    assert memo.get((other,), None, make(other)) == 11
    assert memo.get((equal,), None, make(equal)) == 3                               # right, whatever is kept
