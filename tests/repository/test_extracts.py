"""Extracts and sync: a local copy rebuilt from a full extract plus deltas equals the source."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest

from repository.errors import RepositoryError
from repository.extracts import ExtractWriter, RepositorySync
from repository.store import CertificateRepository
from smki.core.db import Database
from smki.schema import migrate


def snapshot(repository: CertificateRepository) -> tuple[list[tuple], list[tuple]]:
    certificates = sorted((r.serial, r.issuer, r.status, r.kind, r.role, r.usage, r.subject_eui, r.device_id,
                           r.manufacturing_flag, r.not_before, r.not_after, r.sha256, r.lodged_by,
                           r.lodged_at, r.updated_at, r.der)
                          for r in repository.changed_between(None, dt.datetime(9999, 1, 1, tzinfo=dt.UTC)))
    revocations = sorted((r.serial, r.issuer, r.revocation_list, r.reason, r.revoked_at, r.requested_by)
                         for r in repository.revocations())
    return certificates, revocations


@pytest.fixture
def local_copy(tmp_path: Path) -> CertificateRepository:
    database = Database(f"sqlite:///{tmp_path / 'copy.db'}")
    migrate(database)
    return CertificateRepository(database)


def clock(minutes: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)


def test_full_extract_plus_deltas_rebuild_an_identical_copy(repository, issue, interop_org, interop_devices,
                                                            tmp_path, local_copy):
    writer = ExtractWriter(repository, tmp_path / "extracts")
    repository.lodge_many(interop_org[:20] + interop_devices[:50])
    revoked = repository.lodge(issue()).record
    full = writer.full(until=clock(1))

    # day 1: new certificates, a status change, a revocation of something in the full extract
    repository.lodge_many(interop_devices[50:80], now=clock(2))
    repository.revoke(revoked.serial, "keyCompromise", requested_by="dcc", now=clock(2))
    moved = repository.search(kind="device", limit=1).records[0]
    repository.set_status(moved.serial, "N", now=clock(3))
    first_delta = writer.delta(until=clock(4))
    # day 2
    repository.lodge_many(interop_org[20:], now=clock(5))
    second_delta = writer.delta(until=clock(6))

    applied = RepositorySync(local_copy).apply_all([second_delta.path, full.path, first_delta.path])

    assert [a.kind for a in applied] == ["full", "delta", "delta"]
    assert snapshot(local_copy) == snapshot(repository)
    assert local_copy.get(revoked.serial).status == "R" and local_copy.get(moved.serial).status == "N"


def test_extract_is_a_zip_with_a_manifest_of_hashes(repository, interop_devices, tmp_path):
    repository.lodge_many(interop_devices[:5])
    made = ExtractWriter(repository, tmp_path).full(until=clock(1))

    with zipfile.ZipFile(made.path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert {f["name"] for f in manifest["files"]} == {"certificates.jsonl", "revocations.jsonl"}
        assert sum(f["records"] for f in manifest["files"]) == 5
    assert made.path.with_name(made.path.name + ".sha256").read_text().split()[0] == made.sha256


def test_a_damaged_extract_is_refused(repository, interop_devices, tmp_path, local_copy):
    repository.lodge_many(interop_devices[:5])
    made = ExtractWriter(repository, tmp_path).full(until=clock(1))
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(made.path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data.replace(b'"status":"I"', b'"status":"R"', 1)
                            if item.filename == "certificates.jsonl" else data)

    with pytest.raises(RepositoryError) as caught:
        RepositorySync(local_copy).apply_all([damaged])
    assert caught.value.code == "RP:SYN2"


def test_a_delta_that_does_not_follow_the_copy_is_refused(repository, interop_devices, tmp_path, local_copy):
    writer = ExtractWriter(repository, tmp_path)
    repository.lodge_many(interop_devices[:5])
    full = writer.full(until=clock(1))
    repository.lodge_many(interop_devices[5:10], now=clock(2))
    writer.delta(until=clock(3))
    repository.lodge_many(interop_devices[10:15], now=clock(4))
    later = writer.delta(until=clock(5))

    sync = RepositorySync(local_copy)
    sync.apply_all([full.path])
    with pytest.raises(RepositoryError) as caught:
        sync.apply_all([later.path])
    assert caught.value.code == "RP:SYN4"


def test_delta_needs_an_earlier_extract(repository, tmp_path):
    with pytest.raises(RepositoryError) as caught:
        ExtractWriter(repository, tmp_path).delta()
    assert caught.value.code == "RP:EXT1"


def test_sync_command_rebuilds_a_copy_from_a_folder_of_extracts(instance, repository, interop_devices, tmp_path,
                                                                monkeypatch):
    from click.testing import CliRunner

    from smki.cli import main

    monkeypatch.setenv("SMKI_INSTANCE", str(instance.settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", instance.settings.database_url)
    repository.lodge_many(interop_devices[:20])
    writer = ExtractWriter(repository, tmp_path / "out")
    writer.full(until=clock(1))
    repository.lodge_many(interop_devices[20:30], now=clock(2))
    writer.delta(until=clock(3))

    result = CliRunner().invoke(main, ["repository", "sync", str(tmp_path / "out"),
                                       "--target", f"sqlite:///{tmp_path / 'cli-copy.db'}"])

    assert result.exit_code == 0, result.output
    copy = CertificateRepository(Database(f"sqlite:///{tmp_path / 'cli-copy.db'}"))
    assert snapshot(copy) == snapshot(repository)
