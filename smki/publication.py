"""Publication: the Organisation CRL and the ARL, signed by the CA from the Repository's revocation index.

Outside ``repository/`` because it uses the CA to sign. A revocation request only marks the certificate
``R`` and writes an index row (:meth:`repository.store.CertificateRepository.revoke`); the publisher
notices the new rows, waits until the burst has settled (``policies/repository.yaml`` publication
``debounce_seconds``, never longer than ``max_delay_seconds``), and publishes one new list. Lists are
also republished every ``publication_interval_hours`` of their profile (``policies/profiles/crl.yaml``,
``arl.yaml``), whose ``next_update_hours`` sets nextUpdate. cRLNumber is the previous number plus one,
made strictly monotonic by the unique (list, number) constraint.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.exc import IntegrityError

from repository.crls import LISTS, IndexedRevocation, PublishedList, RevocationLists
from repository.extracts import ExtractWriter
from repository.settings import RepositorySettings, load_repository_settings
from repository.store import CertificateRepository
from smki.ca.authority import CA_NAMES
from smki.ca.profile import load_crl_profile
from smki.instance import Instance

log = logging.getLogger(__name__)
NUMBER_ATTEMPTS = 5


def repository_settings(instance: Instance) -> RepositorySettings:
    return load_repository_settings(instance.policies.directory)


def certificate_repository(instance: Instance) -> CertificateRepository:
    return CertificateRepository(instance.database, repository_settings(instance))


# The revocation index only grows, so each process keeps the entries it has read and next time reads only
# the rows after them. A count check catches rows that committed out of id order (possible on PostgreSQL):
# then the list is read whole again.
_entry_cache: dict[tuple[str, str], tuple[int, list[IndexedRevocation]]] = {}
_cache_lock = threading.Lock()


def _entries(lists: RevocationLists, url: str, revocation_list: str) -> tuple[list[IndexedRevocation], int]:
    key = (url, revocation_list)
    with _cache_lock:
        covers, cached = _entry_cache.get(key, (0, []))
        fresh, newest = lists.entries(revocation_list, after_id=covers)
        entries = cached + fresh
        if len(entries) != lists.count(revocation_list):
            entries, newest = lists.entries(revocation_list)
        _entry_cache[key] = (newest, entries)
        return entries, newest


def publish(instance: Instance, revocation_list: str, *, now: dt.datetime | None = None) -> PublishedList:
    """Sign and store the next CRL (``crl``) or ARL (``arl``) from the revocation index."""
    if revocation_list not in LISTS:
        raise ValueError(f"unknown revocation list {revocation_list!r}")
    lists = RevocationLists(instance.database)
    profile = load_crl_profile(instance.policies.directory, revocation_list)
    this_update = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    collecting = gc.isenabled()
    gc.disable()  # hundreds of thousands of new objects would trigger full collections for nothing
    try:
        entries, covers = _entries(lists, instance.database.url, revocation_list)
    finally:
        if collecting:
            gc.enable()
    for _attempt in range(NUMBER_ATTEMPTS):
        number = lists.next_number(revocation_list)
        gc.disable()
        try:
            # IndexedRevocation has the (serial, revoked_at, reason) fields of smki.ca.RevokedEntry
            signed = instance.ca.sign_crl(revocation_list, entries, number, this_update)  # type: ignore[arg-type]
        finally:
            if collecting:
                gc.enable()
        try:
            published = lists.store(revocation_list, number, this_update,
                                    this_update + dt.timedelta(hours=profile.next_update_hours),
                                    len(entries), covers, signed.public_bytes(Encoding.DER))
        except IntegrityError:
            continue  # another publisher took this number; sign again with the next
        log.info("published %s number %d with %d entries", revocation_list, number, len(entries))
        return published
    raise RuntimeError(f"could not allocate a cRLNumber for the {revocation_list} after {NUMBER_ATTEMPTS} tries")


def publish_crl(instance: Instance, *, now: dt.datetime | None = None) -> PublishedList:
    return publish(instance, "crl", now=now)


def publish_arl(instance: Instance, *, now: dt.datetime | None = None) -> PublishedList:
    return publish(instance, "arl", now=now)


def due(instance: Instance, revocation_list: str, now: dt.datetime) -> str | None:
    """Why the list should be published now (``None`` if it need not be)."""
    lists = RevocationLists(instance.database)
    latest = lists.latest(revocation_list)
    if latest is None:
        return "no list published yet"
    settings = repository_settings(instance).publication
    pending = lists.pending(revocation_list, latest.covers_revocation_id)
    if pending is not None:
        first, last = pending
        if now - last >= dt.timedelta(seconds=settings["debounce_seconds"]):
            return "revocations settled"
        if now - first >= dt.timedelta(seconds=settings["max_delay_seconds"]):
            return "revocations waited the longest allowed"
    interval = load_crl_profile(instance.policies.directory, revocation_list).publication_interval_hours
    if now >= latest.this_update + dt.timedelta(hours=interval):
        return "publication interval reached"
    return None


def publish_if_due(instance: Instance, *, now: dt.datetime | None = None) -> list[PublishedList]:
    now = now or dt.datetime.now(dt.UTC)
    published = []
    for revocation_list in LISTS:
        reason = due(instance, revocation_list, now)
        if reason:
            log.info("publishing the %s: %s", revocation_list, reason)
            published.append(publish(instance, revocation_list, now=now))
    return published


def lodge_hierarchy(instance: Instance) -> int:
    """Lodge the instance's own OCA and DCA certificates and the Recovery certificate (idempotent)."""
    repository = certificate_repository(instance)
    lodged = 0
    for name in (*CA_NAMES, "recovery"):
        der = instance.hierarchy.certificate(name).public_bytes(Encoding.DER)
        lodged += repository.lodge(der, status="I", lodged_by="bootstrap").created
    return lodged


def extracts_directory(instance: Instance) -> Path:
    return instance.settings.instance_dir / repository_settings(instance).extracts["directory"]


@dataclass
class PublicationScheduler:
    """Runs publication, the expiry sweep and the extracts in the background (APScheduler), out of every
    request path. One per deployment: ``smki serve`` runs it as a companion process (``smki repository publisher``)."""

    instance: Instance

    def __post_init__(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        settings = repository_settings(self.instance)
        publication, extracts = settings.publication, settings.extracts
        self.scheduler.add_job(self.publication_check, "interval", id="publication-check",
                               seconds=int(publication["check_interval_seconds"]),
                               next_run_time=dt.datetime.now(dt.UTC))
        self.scheduler.add_job(self.expiry_sweep, "interval", id="expiry-sweep",
                               minutes=int(publication["expiry_sweep_minutes"]),
                               next_run_time=dt.datetime.now(dt.UTC))
        self.scheduler.add_job(self.lodging_reconcile, "interval", id="lodging-reconcile",
                               minutes=int(publication.get("reconcile_minutes", 10)),
                               next_run_time=dt.datetime.now(dt.UTC))
        self.scheduler.add_job(self.full_extract, "cron", id="extract-full", **extracts["full"])
        self.scheduler.add_job(self.delta_extract, "cron", id="extract-delta", **extracts["delta"])

    def publication_check(self) -> None:
        try:
            publish_if_due(self.instance)
        except Exception:  # a failed run is logged and retried at the next interval
            log.exception("publication check failed")

    def lodging_reconcile(self) -> None:
        """Lodge released certificates that issuance did not get into the Repository (a process stopped
        between the two), looking back over ``reconcile_window_hours``."""
        from smki.ra.lodging import lodge_unlodged

        window = int(repository_settings(self.instance).publication.get("reconcile_window_hours", 48))
        try:
            lodge_unlodged(self.instance.database, dt.datetime.now(dt.UTC) - dt.timedelta(hours=window))
        except Exception:
            log.exception("lodging reconciliation failed")

    def expiry_sweep(self) -> None:
        try:
            certificate_repository(self.instance).expire_due()
        except Exception:
            log.exception("expiry sweep failed")

    def _writer(self) -> ExtractWriter:
        return ExtractWriter(certificate_repository(self.instance), extracts_directory(self.instance))

    def full_extract(self) -> None:
        try:
            self._writer().full()
        except Exception:
            log.exception("full extract failed")

    def delta_extract(self) -> None:
        try:
            self._writer().delta()
        except Exception:
            log.exception("delta extract failed")

    def start(self) -> None:
        # The Repository holds the instance's own OCA, DCA and Recovery certificates from the first start
        # (idempotent), so a new sandbox's repository is complete without an operator step.
        lodged = lodge_hierarchy(self.instance)
        if lodged:
            log.info("lodged %d CA certificates in the Repository", lodged)
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
