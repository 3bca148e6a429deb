"""Organisation CRL generation with 100,000 revoked entries, against a bare cryptography build.

    python -m bench.repository_crl [--revoked 100000] [--database-url URL]

Loads synthetic Organisation Certificates and their revocation-index rows in bulk, then times
:func:`smki.publication.publish` (read the index, have the CA sign, store the signed CRL) against
cryptography alone building and signing a CRL of the same entries with the same key (the baseline,
given the entries already in memory, producing the DER). Cold: the publisher's first list in a
process, reading the whole revocation index; warm: later lists, which read only new index rows.
Target (issue 4): within 1.5x of the bare build.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import text

import smki.publication
from bench.repository_data import (
    bench_instance,
    bulk_load,
    synthetic_rows,
    template_der,
)
from smki.instance import Instance
from smki.publication import publish

REASONS = ("keyCompromise", "privilegeWithdrawn", "affiliationChanged", "superseded")


def load_revocations(instance: Instance, count: int) -> None:
    engine = instance.database.engine
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO repository_revocation (certificate_id, serial, issuer, revocation_list, reason, revoked_at, "
            "requested_by, recorded_at) SELECT id, serial, issuer, 'crl', "
            "CASE id % 4 WHEN 0 THEN 'keyCompromise' WHEN 1 THEN 'privilegeWithdrawn' "
            "WHEN 2 THEN 'affiliationChanged' ELSE 'superseded' END, :now, 'bench', :now "
            "FROM repository_certificate WHERE kind = 'organisation' ORDER BY id LIMIT :count"),
            {"now": now if engine.dialect.name == "postgresql" else now.replace(tzinfo=None).isoformat(sep=" "),
             "count": count})
        connection.execute(text("UPDATE repository_certificate SET status = 'R' WHERE id IN "
                                "(SELECT certificate_id FROM repository_revocation)"))


def bare_build(instance: Instance, entries: list[tuple[int, dt.datetime, str]]) -> float:
    issuer = instance.hierarchy.certificate("issuing_oca")
    signer = instance.keystore.signer("issuing-oca")
    start = time.perf_counter()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    reasons = {name: x509.CRLReason(x509.ReasonFlags(name)) for name in REASONS}
    revoked = [x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at)
               .add_extension(reasons[reason], critical=False).build() for serial, at, reason in entries]
    # the best bare build: the whole list handed to the builder at once, and the DER bytes produced
    (x509.CertificateRevocationListBuilder(revoked_certificates=revoked).issuer_name(issuer.subject)
     .last_update(now).next_update(now + dt.timedelta(hours=48))
     .add_extension(x509.CRLNumber(1), critical=False)
     .sign(signer, hashes.SHA256()).public_bytes(Encoding.DER))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revoked", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (URL of any database on it): "
                        "the run gets a fresh database there, dropped at the end (default: SQLite)")
    args = parser.parse_args()

    instance = bench_instance(args.database_url)  # removed (and its database dropped) on any exit
    dialect = instance.database.engine.dialect.name
    # one record in ten is an Organisation Certificate: load ten times the revoked count
    bulk_load(instance, synthetic_rows(args.revoked * 10, template_der(instance)))
    load_revocations(instance, args.revoked)
    with instance.database.engine.connect() as connection:
        rows = connection.execute(text("SELECT serial, revoked_at, reason FROM repository_revocation "
                                       "ORDER BY id")).all()
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    entries = [(int(serial, 16), at, reason) for serial, _revoked_at, reason in rows]
    print(f"{dialect}: {len(entries)} revoked entries indexed", flush=True)

    bare, cold, warm = [], [], []
    for _ in range(args.rounds):  # interleaved, so a busy machine slows all three alike
        bare.append(bare_build(instance, entries))
        smki.publication._entry_cache.clear()  # cold: the publisher reads the whole index
        start = time.perf_counter()
        publish(instance, "crl")
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()  # warm: the publisher has read the index before
        published = publish(instance, "crl")
        warm.append(time.perf_counter() - start)
    best_bare = min(bare)
    print(f"{dialect} CRL of {published.entries} entries ({len(published.der)} bytes, last cRLNumber "
          f"{published.number}); bare cryptography build {best_bare:.2f} s")
    for label, times in (("cold (whole index read)", cold), ("warm (new index rows only)", warm)):
        ratio = min(times) / best_bare
        verdict = "meets" if ratio <= 1.5 else "MISSES"
        print(f"  publish {label}: {min(times):.2f} s, ratio {ratio:.2f} -> {verdict} the 1.5x target")


if __name__ == "__main__":
    main()
