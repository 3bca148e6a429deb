"""Repository access control (Appendix P): passwords with lockout, API keys stored only as hashes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from repository.access import AccountLocked
from repository.errors import RepositoryError
from repository.models import RepositoryApiKey, RepositoryUser

PASSWORD = "correct horse battery"


def test_password_is_stored_as_a_scrypt_hash_and_checked(access, instance):
    access.create_user("aro-jones", PASSWORD, "party:ACME/aro:jones")

    assert access.authenticate_user("aro-jones", PASSWORD).name == "party:ACME/aro:jones"
    assert access.authenticate_user("aro-jones", "wrong password!") is None
    assert access.authenticate_user("nobody", PASSWORD) is None
    with instance.database.session() as session:
        stored = session.scalars(select(RepositoryUser.password_hash)).one()
    assert stored.startswith("scrypt$") and PASSWORD not in stored


def test_five_failures_within_an_hour_lock_the_account_for_an_hour(access):
    access.create_user("aro-lee", PASSWORD, "party:ACME/aro:lee")
    start = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
    for minute in range(5):
        assert access.authenticate_user("aro-lee", "bad password!!", now=start + dt.timedelta(minutes=minute)) is None

    with pytest.raises(AccountLocked) as caught:
        access.authenticate_user("aro-lee", PASSWORD, now=start + dt.timedelta(minutes=30))
    assert caught.value.code == "AU:LOCK1"
    assert access.authenticate_user("aro-lee", PASSWORD, now=start + dt.timedelta(minutes=65)) is not None


def test_failures_spread_over_more_than_an_hour_do_not_lock(access):
    access.create_user("aro-kim", PASSWORD, "party:ACME/aro:kim")
    start = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
    for step in range(4):
        access.authenticate_user("aro-kim", "bad password!!", now=start + dt.timedelta(minutes=step))
    access.authenticate_user("aro-kim", "bad password!!", now=start + dt.timedelta(minutes=90))
    assert access.authenticate_user("aro-kim", PASSWORD, now=start + dt.timedelta(minutes=91)) is not None


def test_short_passwords_and_duplicate_users_are_refused(access):
    with pytest.raises(RepositoryError) as caught:
        access.create_user("aro-x", "short", "h")
    assert caught.value.code == "RP:ACC1"
    access.create_user("aro-x", PASSWORD, "h")
    with pytest.raises(RepositoryError) as caught:
        access.create_user("aro-x", PASSWORD, "h")
    assert caught.value.code == "RP:ACC3"


def test_api_keys_are_stored_only_as_hashes_and_withdrawn_together(access, instance):
    first = access.issue_api_key("party:ACME")
    second = access.issue_api_key("party:ACME", may_lodge_documents=True)
    other = access.issue_api_key("party:OTHER")
    access.create_user("acme-user", PASSWORD, "party:ACME")

    assert access.authenticate_api_key(first).name == "party:ACME"
    assert access.authenticate_api_key(second).may_lodge_documents
    with instance.database.session() as session:
        stored = session.scalars(select(RepositoryApiKey.key_sha256)).all()
    assert first not in stored and len(stored) == 3

    assert access.revoke_all("party:ACME") == 3
    assert access.authenticate_api_key(first) is None and access.authenticate_api_key(second) is None
    assert access.authenticate_user("acme-user", PASSWORD) is None
    assert access.authenticate_api_key(other).name == "party:OTHER"


def test_dccboxed_default_key_needs_the_compatibility_setting(access):
    assert access.authenticate_api_key("u3bg9gt38htd0j2") is None
    assert access.authenticate_api_key("u3bg9gt38htd0j2", dccboxed_compatible=True).name == "dccboxed-default"
