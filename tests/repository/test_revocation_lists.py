"""The Organisation CRL and the ARL: built from the revocation index, signed by the right CA, checked
with ``openssl crl -verify``, cRLNumber strictly increasing, served with ETag and Last-Modified."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.exc import IntegrityError

from repository.crls import RevocationLists
from smki.ca.profile import load_crl_profile
from smki.publication import due, lodge_hierarchy, publish, publish_if_due


def openssl_verify(der: bytes, ca: x509.Certificate, tmp_path: Path) -> str:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    crl_file, ca_file = tmp_path / "list.crl", tmp_path / "ca.pem"
    crl_file.write_bytes(der)
    ca_file.write_bytes(ca.public_bytes(Encoding.PEM))
    done = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(crl_file), "-CAfile", str(ca_file),
                           "-verify", "-noout", "-text"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "verify OK" in done.stdout + done.stderr
    return done.stdout


def test_revoked_organisation_certificates_appear_on_a_crl_that_openssl_verifies(instance, repository, issue,
                                                                                 tmp_path):
    first, second, _kept = (repository.lodge(issue()).record for _ in range(3))
    at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    repository.revoke(first.serial, "keyCompromise", at, "dcc")
    repository.revoke(second.serial, "rejectedOnReceipt", at, "party:X/aro:a")

    published = publish(instance, "crl")

    openssl_verify(published.der, instance.hierarchy.certificate("issuing_oca"), tmp_path)
    crl = x509.load_der_x509_crl(published.der)
    assert crl.issuer == instance.hierarchy.certificate("issuing_oca").subject
    assert {f"{r.serial_number:032X}" for r in crl} == {first.serial, second.serial}
    entry = crl.get_revoked_certificate_by_serial_number(int(first.serial, 16))
    assert entry.revocation_date_utc == at
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    profile = load_crl_profile(instance.policies.directory, "crl")
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=profile.next_update_hours)


def test_crl_numbers_increase_by_one_with_each_publication(instance, repository, issue, tmp_path):
    numbers = []
    for _ in range(3):
        repository.revoke(repository.lodge(issue()).record.serial, "keyCompromise", requested_by="dcc")
        published = publish(instance, "crl")
        crl = x509.load_der_x509_crl(published.der)
        numbers.append(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
        assert len(list(crl)) == len(numbers)
        openssl_verify(published.der, instance.hierarchy.certificate("issuing_oca"), tmp_path)
    assert numbers == [1, 2, 3]


def test_the_database_refuses_a_reused_crl_number(instance):
    lists = RevocationLists(instance.database)
    now = dt.datetime.now(dt.UTC)
    lists.store("crl", 7, now, now, 0, 0, b"x")
    with pytest.raises(IntegrityError):
        lists.store("crl", 7, now, now, 0, 0, b"y")


def test_a_revoked_issuing_oca_goes_on_the_arl_signed_by_the_root_oca(instance, repository, tmp_path,
                                                                      interop_dir):
    lodge_hierarchy(instance)
    issuing = instance.hierarchy.certificate("issuing_oca")
    serial = f"{issuing.serial_number:032X}"
    repository.revoke(serial, "caCompromise", requested_by="smki-pma")

    arl = publish(instance, "arl")
    crl = publish(instance, "crl")

    openssl_verify(arl.der, instance.hierarchy.certificate("root_oca"), tmp_path)
    assert [f"{r.serial_number:032X}" for r in x509.load_der_x509_crl(arl.der)] == [serial]
    assert list(x509.load_der_x509_crl(crl.der)) == []


def test_device_revocation_shows_r_and_is_on_no_list(instance, repository, issue):
    device = repository.lodge(issue("device", "00-DB-12-34-56-78-90-03")).record
    repository.revoke(device.serial, "keyCompromise", requested_by="dcc")
    assert repository.get(device.serial).status == "R"
    assert list(x509.load_der_x509_crl(publish(instance, "crl").der)) == []


def test_publication_waits_for_a_burst_of_revocations_to_settle(instance, repository, issue):
    base = dt.datetime.now(dt.UTC)
    publish(instance, "crl", now=base)
    publish(instance, "arl", now=base)
    assert due(instance, "crl", base) is None

    repository.revoke(repository.lodge(issue()).record.serial, "keyCompromise", requested_by="dcc")
    revoked_at = dt.datetime.now(dt.UTC)

    assert due(instance, "crl", revoked_at + dt.timedelta(seconds=1)) is None  # still within the debounce
    assert due(instance, "crl", revoked_at + dt.timedelta(seconds=31)) == "revocations settled"
    assert due(instance, "arl", revoked_at + dt.timedelta(seconds=31)) is None
    published = publish_if_due(instance, now=revoked_at + dt.timedelta(seconds=31))
    assert [p.revocation_list for p in published] == ["crl"] and published[0].entries == 1
    assert due(instance, "crl", revoked_at + dt.timedelta(seconds=32)) is None


def test_lists_are_republished_at_the_configured_interval(instance):
    base = dt.datetime.now(dt.UTC)
    publish(instance, "crl", now=base)
    interval = load_crl_profile(instance.policies.directory, "crl").publication_interval_hours
    assert due(instance, "crl", base + dt.timedelta(hours=interval) - dt.timedelta(seconds=1)) is None
    assert due(instance, "crl", base + dt.timedelta(hours=interval)) == "publication interval reached"


def test_crl_and_arl_are_served_at_stable_urls_with_etag_and_last_modified(instance, client):
    assert client.get("/api/v1/repository/crl").status_code == 404
    published = publish(instance, "crl")
    publish(instance, "arl")

    response = client.get("/api/v1/repository/crl")
    assert response.status_code == 200
    assert response.mimetype == "application/pkix-crl"
    assert response.data == published.der
    assert response.headers["ETag"] and response.headers["Last-Modified"]
    again = client.get("/api/v1/repository/crl", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/api/v1/repository/arl").mimetype == "application/pkix-crl"
    assert client.get("/api/v1/repository/crl/1").data == published.der
    summary = client.get("/api/v1/repository/revocation-lists").get_json()
    assert summary["crl"]["number"] == 1 and summary["arl"]["number"] == 1


def test_operator_revoke_and_publish_commands(instance, repository, issue, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from smki.cli import main

    monkeypatch.setenv("SMKI_INSTANCE", str(instance.settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", instance.settings.database_url)
    record = repository.lodge(issue()).record
    runner = CliRunner()

    revoked = runner.invoke(main, ["revoke", record.serial, "--reason", "keyCompromise", "--operator", "ops"])
    published = runner.invoke(main, ["crl", "publish", "--list", "crl", "--out", str(tmp_path)])
    refused = runner.invoke(main, ["revoke", record.serial, "--reason", "keyCompromise"])

    assert revoked.exit_code == 0, revoked.output
    assert published.exit_code == 0 and "crl number 1" in published.output
    assert refused.exit_code == 2 and "RP:REV2" in refused.output
    assert repository.revocations("crl")[0].requested_by == "operator:ops"
    crl = x509.load_der_x509_crl((tmp_path / "crl-1.crl").read_bytes())
    assert [f"{r.serial_number:032X}" for r in crl] == [record.serial]


def test_the_scheduler_runs_publication_sweep_and_extracts_out_of_the_request_path(instance, monkeypatch):
    from smki.publication import PublicationScheduler
    from smki.repository_cli import serve_options
    from smki.web.server import smki_command

    scheduler = PublicationScheduler(instance)
    assert {job.id for job in scheduler.scheduler.get_jobs()} == {
        "publication-check", "expiry-sweep", "lodging-reconcile", "extract-full", "extract-delta"}
    scheduler.publication_check()  # what the interval job runs: nothing published yet, so both lists
    lists = RevocationLists(instance.database)
    assert lists.latest("crl").number == 1 and lists.latest("arl").number == 1

    monkeypatch.setenv("SMKI_DCCBOXED", "0")  # serve_options sets it; monkeypatch puts it back
    options = serve_options(instance, "127.0.0.1", 8080, dccboxed=True)
    assert options["bind"] == ["127.0.0.1:8080", "127.0.0.1:8083"]
    # the scheduler runs as a companion process of smki serve, not in the request path nor the master
    assert options["companions"] == [smki_command("repository", "publisher")]
