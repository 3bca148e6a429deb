"""CA test fixtures: one instance per module for the many small tests that only touch the ledger."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, delete, text

from smki.core.config import DEFAULT_POLICIES_DIR, Settings
from smki.core.db import normalise_url
from smki.instance import Instance
from smki.models import CsrRejection, DeviceCertificateTally, IssuanceRecord
from smki.schema import migrate
from tests.conftest import postgres_url


@pytest.fixture(scope="module")
def shared_instance(tmp_path_factory: pytest.TempPathFactory, template_instance_dir: Path) -> Iterator[Instance]:
    """The session's hierarchy with a migrated database of its own (SQLite, or a PostgreSQL schema),
    shared by one module's tests: migrating a fresh database per test would dominate their run time."""
    directory = tmp_path_factory.mktemp("shared") / "instance"
    shutil.copytree(template_instance_dir, directory)
    base, schema = postgres_url(), f"t_{uuid.uuid4().hex[:16]}"
    if base:
        admin = create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    else:
        url = f"sqlite:///{directory.parent / 'shared.db'}"
    instance = Instance(Settings(directory, url, DEFAULT_POLICIES_DIR, None))
    migrate(instance.database)
    yield instance
    instance.database.engine.dispose()
    if base:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def ledger_instance(shared_instance: Instance) -> Instance:
    """The shared instance with an empty ledger: no issuance rows, no rejection rows, no device tally."""
    with shared_instance.database.session() as session:
        session.execute(delete(IssuanceRecord))
        session.execute(delete(DeviceCertificateTally))
        session.execute(delete(CsrRejection))
    return shared_instance
