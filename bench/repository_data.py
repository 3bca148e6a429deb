"""Synthetic Repository records for the benchmarks, bulk-loaded (executemany on SQLite, COPY on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from bench.common import temporary_instance
from smki.core.eui64 import Eui64
from smki.csrgen import device_csr
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.schema import migrate

COLUMNS = ("serial", "issuer", "kind", "status", "role", "usage", "subject_eui", "device_id", "subject",
           "manufacturing_flag", "not_before", "not_after", "sha256", "der", "lodged_at", "lodged_by", "updated_at")
FIRST_DEVICE = 0x00DB120000000000
CHUNK = 50_000


def bench_instance(database_url: str | None) -> Instance:
    """A throwaway, migrated instance (on PostgreSQL in a fresh database), removed when the benchmark exits."""
    instance = temporary_instance(database_url)
    migrate(instance.database)
    return instance


def template_der(instance: Instance) -> bytes:
    """A real Device Certificate, so each synthetic row is as wide as a real one."""
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    csr = device_csr(ec.generate_private_key(ec.SECP256R1()), Eui64(FIRST_DEVICE.to_bytes(8, "big")))
    return service.issue_from_csr(csr.public_bytes(Encoding.DER), channel="bench").der


def synthetic_rows(count: int, der: bytes, seed: int = 7) -> Iterator[tuple[object, ...]]:
    """Nine device certificates in ten (DS and KA per device), one Organisation Certificate in ten."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    not_before = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    device_end = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    org_end = dt.datetime(2034, 1, 1, tzinfo=dt.UTC)
    statuses = "IIIIIIINPE"
    for n in range(count):
        serial = f"{rng.randrange(1 << 120, 1 << 127):032X}"
        status = statuses[n % len(statuses)]
        if n % 10 == 9:
            eui = f"{0x90B3D51F30000000 + n // 10:016X}"
            yield (serial, "CN=S1,OU=07", "organisation", status, 2, "DS" if n % 20 == 9 else "KA", eui, None,
                   f"OU=02,2.5.4.45=#00{eui}", False, not_before, org_end, "0" * 64, der, now, "bench", now)
        else:
            device = f"{FIRST_DEVICE + n // 2:016X}"
            yield (serial, "CN=S357", "device", status, None, "DS" if n % 2 == 0 else "KA", None, device, "",
                   n % 3 == 0, not_before, device_end, "0" * 64, der, now, "bench", now)


def _sqlite_time(value: dt.datetime) -> str:
    # the storage format SQLAlchemy's SQLite DateTime reads back (naive UTC)
    return value.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def bulk_load(instance: Instance, rows: Iterator[tuple[object, ...]]) -> int:
    engine = instance.database.engine
    columns = ", ".join(COLUMNS)
    loaded = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY repository_certificate ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    loaded += 1
        else:
            placeholders = ", ".join("?" for _ in COLUMNS)
            chunk: list[tuple[object, ...]] = []
            for row in rows:
                chunk.append(tuple(_sqlite_time(v) if isinstance(v, dt.datetime) else v for v in row))
                if len(chunk) >= CHUNK:
                    cursor.executemany(f"INSERT INTO repository_certificate ({columns}) VALUES ({placeholders})", chunk)
                    loaded += len(chunk)
                    chunk = []
            if chunk:
                cursor.executemany(f"INSERT INTO repository_certificate ({columns}) VALUES ({placeholders})", chunk)
                loaded += len(chunk)
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return loaded

