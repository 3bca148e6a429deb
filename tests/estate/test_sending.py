"""Sending commands to the estate (issue 13 item 5): the sandbox builds, signs and MAC-wraps CS02b commands for
a set of devices, delivers them to the simulator and verifies every response with the device's certificate."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from smki.estate.jobs import EstateJobs
from smki.estate.models import EstateAnchor, EstateDevice
from smki.estate.plan import EstateError
from smki.estate.sending import BAD_REQUEST, CommandSender
from smki.estate.testkeys import NO_TEST_KEY, TestKeyStore
from smki.instance import Instance
from smki.ra.demo import seed_demo
from tests.estate.conftest import issue_organisation


def held(instance: Instance, role: int, usage: str) -> dict[str, bytes]:
    """Per device, the certificate in its (role, usage) management cell."""
    with instance.database.session() as session:
        anchors = {a.id: a.der for a in session.execute(select(EstateAnchor.id, EstateAnchor.der))}
        out = {}
        for device_id, cells in session.execute(select(EstateDevice.device_id, EstateDevice.cells)):
            for cell_role, cell_usage, kind, anchor, _state in json.loads(cells):
                if (cell_role, cell_usage, kind) == (role, usage, 0):
                    out[device_id] = anchors[anchor]
        return out


def test_supplier_and_recovery_commands_are_sent_and_every_response_verified(instance: Instance,
                                                                              jobs: EstateJobs) -> None:
    seed_demo(instance)
    TestKeyStore(instance).issue_test_credentials()
    jobs.service.create_run(4, types="ESME=1,GSME=1")
    jobs.run_pending()
    sender = CommandSender(instance)

    # supplierBySupplier, signed with the supplier's test key and MAC-wrapped with the ACB's
    report = sender.send("supplier", ["supplier"], chunk_size=3)
    assert (report.devices, report.answered, report.verified) == (4, 4, 4), report.problems
    assert not report.refused
    assert set(report.statuses) == {"supplier digitalSignature: success", "supplier keyAgreement: success",
                                    "supplier keyAgreement (top-up): success"}

    # the suppliers' new signing certificates, placed by the Recovery key on two devices
    before = held(instance, 2, "digitalSignature")
    for eui in _holders(instance, 2, "digitalSignature"):
        issue_organisation(instance, eui, "02", ["digitalSignature"], {})
    targets = sorted(before)[:2]
    report = CommandSender(instance).send("recovery", ["supplier"], targets)
    assert (report.devices, report.verified) == (2, 2) and not report.refused, report.problems
    after = held(instance, 2, "digitalSignature")
    assert all(after[d] != before[d] for d in targets)
    assert all(after[d] == before[d] for d in before if d not in targets)

    # the suppliers' own keys for the new certificates are not held: a supplier command cannot be signed
    report = CommandSender(instance).send("supplier", ["supplier"], targets)
    assert report.refused == {NO_TEST_KEY: 2} and report.verified == 0


def _holders(instance: Instance, role: int, usage: str) -> set[str]:
    with instance.database.session() as session:
        return {eui for eui in session.scalars(select(EstateAnchor.subject_eui).where(
            EstateAnchor.role == role, EstateAnchor.key_usage == usage)) if eui}


def test_bad_requests_are_refused_with_a_code(instance: Instance) -> None:
    sender = CommandSender(instance)
    for mode, cells in (("rootBySupplier", ["supplier"]), ("recovery", ["nobody"]), ("supplier", ["recovery"])):
        with pytest.raises(EstateError) as refused:
            sender.send(mode, cells)
        assert refused.value.code == BAD_REQUEST


def test_smki_estate_send(instance: Instance, jobs: EstateJobs) -> None:
    from click.testing import CliRunner

    from smki.estate.cli import estate

    env = {"SMKI_INSTANCE": str(instance.settings.instance_dir), "SMKI_DATABASE_URL": instance.settings.database_url}
    seed_demo(instance)
    TestKeyStore(instance).issue_test_credentials()
    jobs.service.create_run(2, types="CHF")
    jobs.run_pending()
    result = CliRunner().invoke(estate, ["send", "--mode", "recovery", "--cells", "accessControlBroker,wanProvider",
                                         "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["devices"], report["verified"]) == (2, 2)
    assert report["statuses"] == {"access_control_broker keyAgreement: success": 2,
                                  "wan_provider digitalSignature: success": 2}
    refused = CliRunner().invoke(estate, ["send", "--mode", "supplier", "--cells", "wanProvider"], env=env,
                                 catch_exceptions=False)
    assert refused.exit_code == 2 and "ES:SND1" in refused.output
    for bad in ("2/2", "1", "a/b", "-1/2"):
        refused = CliRunner().invoke(estate, ["send", "--mode", "recovery", "--cells", "wanProvider", "--share", bad],
                                     env=env, catch_exceptions=False)
        assert refused.exit_code == 2 and "ES:SND1" in refused.output, bad
    half = CliRunner().invoke(estate, ["send", "--mode", "recovery", "--cells", "wanProvider", "--share", "1/2",
                                       "--json"], env=env, catch_exceptions=False)
    assert half.exit_code == 0, half.output
    assert json.loads(half.output)["devices"] == 1
    listed = CliRunner().invoke(estate, ["send", "--runs"], env=env, catch_exceptions=False)
    assert listed.exit_code == 0 and "run 1: recovery, completed, 2 of 2 devices" in listed.output, listed.output
    unknown = CliRunner().invoke(estate, ["send", "--resume", "99"], env=env, catch_exceptions=False)
    assert unknown.exit_code == 2 and "ES:SRN1" in unknown.output


def test_senders_sharing_the_estate_send_each_device_one_command(instance: Instance, jobs: EstateJobs) -> None:
    seed_demo(instance)
    TestKeyStore(instance).issue_test_credentials()
    jobs.service.create_run(5, types="ESME")
    jobs.run_pending()
    before = held(instance, 2, "digitalSignature")
    for eui in _holders(instance, 2, "digitalSignature"):
        issue_organisation(instance, eui, "02", ["digitalSignature"], {})
    reports = [CommandSender(instance).send("recovery", ["supplier"], share=(k, 2), chunk_size=2) for k in (0, 1)]
    assert sorted(r.devices for r in reports) == [2, 3]
    assert all(r.verified == r.devices and not r.refused for r in reports), [r.problems for r in reports]
    after = held(instance, 2, "digitalSignature")
    assert all(after[d] != before[d] for d in before)          # every device once: a second would be a replay
