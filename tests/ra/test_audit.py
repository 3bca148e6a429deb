"""The audit chain: any altered, removed or reordered record is detected by ``smki audit verify``."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from smki.cli import main
from smki.ra import audit
from smki.ra.service import RegistrationAuthority
from tests.ra.conftest import SUPPLIER_A_IS, Population, org_csr_pem


@pytest.fixture
def chain(ra: RegistrationAuthority, population: Population, monkeypatch) -> RegistrationAuthority:
    ra.submit_organisation_csr(ra.authenticate_token(population.aro_a.token), org_csr_pem(SUPPLIER_A_IS))
    monkeypatch.setenv("SMKI_INSTANCE", str(ra.instance.settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", ra.instance.settings.database_url)
    return ra


def verify_cli() -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "verify"])
    return result.exit_code, result.output


def execute(ra: RegistrationAuthority, sql: str, **params) -> None:  # type: ignore[no-untyped-def]
    with ra.database.session() as session:
        session.execute(text(sql), params)


def test_intact_chain_verifies(chain: RegistrationAuthority) -> None:
    code, output = verify_cli()
    assert code == 0, output
    assert "audit chain intact" in output
    assert audit.verify(chain.database).records > 20


def test_altered_record_is_detected(chain: RegistrationAuthority) -> None:
    execute(chain, "UPDATE ra_audit SET detail = replace(detail, 'org.role.supplier', 'org.role.other') "
            "WHERE action = 'csr.approved'")
    code, output = verify_cli()
    assert code == 1 and "content does not match its hash" in output


@pytest.mark.parametrize("column,value", [("actor", "someone-else"), ("action", "csr.refused"),
                                          ("recorded_at", "2020-01-01T00:00:00+00:00")])
def test_any_altered_field_is_detected(chain: RegistrationAuthority, column: str, value: str) -> None:
    execute(chain, f"UPDATE ra_audit SET {column} = :value WHERE seq = 5", value=value)
    assert not audit.verify(chain.database).intact


def test_removed_record_is_detected(chain: RegistrationAuthority) -> None:
    execute(chain, "DELETE FROM ra_audit WHERE seq = 3")
    code, output = verify_cli()
    assert code == 1 and "record 4" in output


def test_removed_last_record_is_detected(chain: RegistrationAuthority) -> None:
    execute(chain, "DELETE FROM ra_audit WHERE seq = (SELECT max(seq) FROM ra_audit)")
    code, output = verify_cli()
    assert code == 1 and "chain head" in output


def test_reordered_records_are_detected(chain: RegistrationAuthority) -> None:
    # swap the sequence numbers of two records (through a free number)
    execute(chain, "UPDATE ra_audit SET seq = -1 WHERE seq = 2")
    execute(chain, "UPDATE ra_audit SET seq = 2 WHERE seq = 3")
    execute(chain, "UPDATE ra_audit SET seq = 3 WHERE seq = -1")
    code, output = verify_cli()
    assert code == 1 and "does not link to its predecessor" in output


def test_rehashed_record_still_breaks_the_chain(chain: RegistrationAuthority) -> None:
    """A forger who recomputes the altered record's own hash still breaks its successor's link."""
    with chain.database.session() as session:
        row = session.get(audit.AuditRecord, 4)
        row.actor = "forger"
        row.hash = audit.link_hash(row.prev_hash, row.seq, row.recorded_at, row.actor, row.action, row.subject,
                                   row.detail)
    result = audit.verify(chain.database)
    assert any("record 5: does not link" in problem for problem in result.problems)


def test_sqlite_writers_queue_on_a_file_lock_in_turn(ra: RegistrationAuthority) -> None:
    """On SQLite, units of work queue on a file lock beside the database before taking SQLite's own lock
    (so a waiting writer wakes as soon as the lock is free, not after a busy-handler sleep). A second writer
    waits for the first; a unit run inside another's does not wait for itself."""
    database = ra.database
    if not database.url.startswith("sqlite"):
        pytest.skip("the file lock is SQLite's; PostgreSQL writers wait on the chain head's row lock")
    inside, leave = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with audit.writers_queue(database):
            order.append("first in")
            with audit.writers_queue(database):  # nested: already held by this thread
                order.append("nested")
            inside.set()
            leave.wait(30)
            order.append("first out")

    def second() -> None:
        with audit.writers_queue(database):
            order.append("second in")

    holder = threading.Thread(target=first)
    holder.start()
    assert inside.wait(30)
    waiter = threading.Thread(target=second)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and "second in" not in order  # queued behind the first
    leave.set()
    holder.join(30)
    waiter.join(30)
    assert order == ["first in", "nested", "first out", "second in"]
