"""Repository extracts (the SFTP extracts of Appendix O, MP147) and ``smki repository sync``.

A *full* extract holds every certificate record and revocation changed before its cut-off ``until``;
a *delta* holds every record changed in [``since``, ``until``), where ``since`` is the previous
extract's ``until``. Records are complete (status and certificate), so applying a delta is an upsert.
The cut-off trails the clock by ``settle_seconds`` so a transaction still open at the cut is caught by
the next delta instead of falling between two.

Each extract is a zip: ``certificates.jsonl``, ``revocations.jsonl`` and ``manifest.json`` (kind,
window, and for each file its SHA-256 and record count). Sync checks every hash, refuses a delta whose
``since`` is not where the local copy stands, and applies each file in one transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, insert, select, update

from repository.errors import RepositoryError
from repository.models import (
    RepositoryCertificate,
    RepositoryExtract,
    RepositoryRevocation,
    RepositorySyncState,
)
from repository.store import CertificateRecord, CertificateRepository, Revocation, now_utc, utc

FORMAT = "smki-repository-extract/1"
CERTIFICATES = "certificates.jsonl"
REVOCATIONS = "revocations.jsonl"
MANIFEST = "manifest.json"
CHUNK = 1000


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _parse_time(value: str | None) -> dt.datetime | None:
    return utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00"))) if value else None


def certificate_line(record: CertificateRecord) -> dict[str, Any]:
    return {"serial": record.serial, "issuer": record.issuer, "subject": record.subject, "kind": record.kind,
            "status": record.status, "role": record.role, "usage": record.usage,
            "subject_eui": record.subject_eui, "device_id": record.device_id,
            "manufacturing_flag": record.manufacturing_flag, "not_before": _iso(record.not_before),
            "not_after": _iso(record.not_after), "sha256": record.sha256, "lodged_at": _iso(record.lodged_at),
            "lodged_by": record.lodged_by, "updated_at": _iso(record.updated_at),
            "certificate": base64.b64encode(record.der or b"").decode()}


def revocation_line(revocation: Revocation) -> dict[str, Any]:
    return {"serial": revocation.serial, "issuer": revocation.issuer, "list": revocation.revocation_list,
            "reason": revocation.reason, "revoked_at": _iso(revocation.revoked_at),
            "requested_by": revocation.requested_by, "recorded_at": _iso(revocation.recorded_at)}


class _HashingWriter:
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.digest, self.records = handle, hashlib.sha256(), 0

    def write_line(self, data: dict[str, Any]) -> None:
        line = (json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n").encode()
        self.digest.update(line)
        self.handle.write(line)
        self.records += 1


@dataclass(frozen=True)
class ExtractFile:
    path: Path
    kind: str
    since: dt.datetime | None
    until: dt.datetime
    records: int
    sha256: str


class ExtractWriter:
    def __init__(self, repository: CertificateRepository, directory: Path, source: str = "smki") -> None:
        self.repository = repository
        self.directory = directory
        self.source = source

    def _settle(self) -> dt.timedelta:
        return dt.timedelta(seconds=int(self.repository.settings.extracts["settle_seconds"]))

    def last_until(self) -> dt.datetime | None:
        with self.repository.database.session() as session:
            value = session.scalar(select(RepositoryExtract.until).order_by(RepositoryExtract.until.desc()).limit(1))
        return utc(value) if value is not None else None

    def full(self, *, until: dt.datetime | None = None) -> ExtractFile:
        until = until or now_utc() - self._settle()
        return self._write("full", None, until)

    def delta(self, *, since: dt.datetime | None = None, until: dt.datetime | None = None) -> ExtractFile:
        since = since or self.last_until()
        if since is None:
            raise RepositoryError("RP:EXT1", "there is no earlier extract for a delta to follow; make a full "
                                  "extract first")
        until = until or now_utc() - self._settle()
        if until <= since:
            raise RepositoryError("RP:EXT2", f"the delta would be empty: it must end after {_iso(since)}")
        return self._write("delta", since, until)

    def _write(self, kind: str, since: dt.datetime | None, until: dt.datetime) -> ExtractFile:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = until.strftime("%Y%m%dT%H%M%SZ")
        path = self.directory / f"smki-repository-{kind}-{stamp}.zip"
        partial = path.with_suffix(".zip.partial")
        files: list[dict[str, Any]] = []
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            with archive.open(CERTIFICATES, "w") as handle:
                writer = _HashingWriter(handle)
                for record in self.repository.changed_between(since, until):
                    writer.write_line(certificate_line(record))
                files.append({"name": CERTIFICATES, "sha256": writer.digest.hexdigest(), "records": writer.records})
            with archive.open(REVOCATIONS, "w") as handle:
                writer = _HashingWriter(handle)
                for revocation in self.repository.revocations(since=since, until=until):
                    writer.write_line(revocation_line(revocation))
                files.append({"name": REVOCATIONS, "sha256": writer.digest.hexdigest(), "records": writer.records})
            manifest = {"format": FORMAT, "source": self.source, "kind": kind, "since": _iso(since),
                        "until": _iso(until), "created_at": _iso(now_utc()), "files": files}
            archive.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        partial.replace(path)  # a crash never leaves a half-written extract under the final name
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
        records = sum(f["records"] for f in files)
        with self.repository.database.session() as session:
            session.add(RepositoryExtract(kind=kind, since=since, until=until, file_name=path.name, sha256=digest,
                                          records=records, created_at=now_utc()))
        return ExtractFile(path, kind, since, until, records, digest)


# ------------------------------------------------------------------------------------------- sync
@dataclass(frozen=True)
class Extract:
    path: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def since(self) -> dt.datetime | None:
        return _parse_time(self.manifest.get("since"))

    @property
    def until(self) -> dt.datetime:
        value = _parse_time(self.manifest["until"])
        assert value is not None
        return value

    def lines(self, name: str) -> Iterator[dict[str, Any]]:
        with zipfile.ZipFile(self.path) as archive, archive.open(name) as handle:
            for raw in handle:
                yield json.loads(raw)


def open_extract(path: Path) -> Extract:
    """Read and verify an extract: its manifest, and every file's SHA-256 and record count."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read(MANIFEST))
            if manifest.get("format") != FORMAT:
                raise RepositoryError("RP:SYN1", f"{path.name} is not a Repository extract ({FORMAT})")
            for entry in manifest["files"]:
                digest, count = hashlib.sha256(), 0
                with archive.open(entry["name"]) as handle:
                    for line in handle:
                        digest.update(line)
                        count += 1
                if digest.hexdigest() != entry["sha256"] or count != entry["records"]:
                    raise RepositoryError("RP:SYN2", f"{path.name}: {entry['name']} does not match its manifest "
                                          "hash; the extract is damaged, fetch it again")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise RepositoryError("RP:SYN1", f"{path.name} is not a readable Repository extract ({exc})") from exc
    return Extract(path, manifest)


def _certificate_row(line: dict[str, Any]) -> dict[str, Any]:
    der = base64.b64decode(line["certificate"])
    if hashlib.sha256(der).hexdigest() != line["sha256"]:
        raise RepositoryError("RP:SYN2", f"certificate {line['serial']} does not match its SHA-256")
    return {"serial": line["serial"], "issuer": line["issuer"], "subject": line["subject"], "kind": line["kind"],
            "status": line["status"], "role": line["role"], "usage": line["usage"],
            "subject_eui": line["subject_eui"], "device_id": line["device_id"],
            "manufacturing_flag": bool(line["manufacturing_flag"]), "not_before": _parse_time(line["not_before"]),
            "not_after": _parse_time(line["not_after"]), "sha256": line["sha256"], "der": der,
            "lodged_at": _parse_time(line["lodged_at"]), "lodged_by": line["lodged_by"],
            "updated_at": _parse_time(line["updated_at"])}


def _chunks(items: Iterable[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class RepositorySync:
    """Rebuilds and keeps up to date a local copy of a Repository from its extracts."""

    def __init__(self, copy: CertificateRepository) -> None:
        self.copy = copy

    def state(self, source: str) -> dt.datetime | None:
        with self.copy.database.session() as session:
            value = session.scalar(select(RepositorySyncState.as_of).where(RepositorySyncState.source == source))
        return utc(value) if value is not None else None

    def apply_all(self, paths: Sequence[Path]) -> list[Extract]:
        """Apply extracts in window order: the newest full one (if any) first, then the deltas after it."""
        extracts = sorted((open_extract(p) for p in paths), key=lambda e: (e.until, e.kind != "full"))
        fulls = [e for e in extracts if e.kind == "full"]
        if fulls:
            start = fulls[-1]
            extracts = [start] + [e for e in extracts if e.kind == "delta" and e.until > start.until]
        applied = []
        for extract in extracts:
            self.apply(extract)
            applied.append(extract)
        return applied

    def apply(self, extract: Extract) -> None:
        source = str(extract.manifest["source"])
        current = self.state(source)
        if extract.kind == "delta":
            if current is None:
                raise RepositoryError("RP:SYN3", "the local copy has no full extract yet; apply a full extract "
                                      "before any delta")
            if extract.until <= current:
                return  # already applied
            if extract.since != current:
                raise RepositoryError("RP:SYN4", f"{extract.path.name} starts at {_iso(extract.since)} but the "
                                      f"local copy stands at {_iso(current)}; a delta is missing in between")
        t = RepositoryCertificate
        with self.copy.database.session() as session:
            if extract.kind == "full":
                session.execute(delete(RepositoryRevocation))
                session.execute(delete(t))
            for chunk in _chunks(_certificate_row(line) for line in extract.lines(CERTIFICATES)):
                keys = {(row["serial"], row["issuer"]) for row in chunk}
                existing = {(serial, issuer): id_ for id_, serial, issuer in session.execute(
                    select(t.id, t.serial, t.issuer).where(t.serial.in_({serial for serial, _ in keys})))}
                updates = [{"id": existing[(row["serial"], row["issuer"])], **row} for row in chunk
                           if (row["serial"], row["issuer"]) in existing]
                inserts = [row for row in chunk if (row["serial"], row["issuer"]) not in existing]
                if updates:
                    session.execute(update(t), updates)
                if inserts:
                    session.execute(insert(t), inserts)
            for line in extract.lines(REVOCATIONS):
                certificate_id = session.scalar(select(t.id).where(t.serial == line["serial"],
                                                                   t.issuer == line["issuer"]))
                if certificate_id is None:
                    raise RepositoryError("RP:SYN5", f"revocation of {line['serial']} names a certificate the "
                                          "extracts do not contain")
                session.execute(delete(RepositoryRevocation).where(
                    RepositoryRevocation.certificate_id == certificate_id))
                session.add(RepositoryRevocation(
                    certificate_id=certificate_id, serial=line["serial"], issuer=line["issuer"],
                    revocation_list=line["list"], reason=line["reason"], revoked_at=_parse_time(line["revoked_at"]),
                    requested_by=line["requested_by"], recorded_at=_parse_time(line["recorded_at"])))
            state = session.scalars(select(RepositorySyncState).where(RepositorySyncState.source == source)
                                    ).one_or_none()
            if state is None:
                session.add(RepositorySyncState(source=source, as_of=extract.until, applied=1))
            else:
                state.as_of, state.applied = extract.until, state.applied + 1
