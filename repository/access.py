"""Repository access control (SEC Appendix P): portal users with passwords, web-service API keys.

The RA provisions credentials here when it approves an ARO or a Party for Repository access, and calls
:meth:`RepositoryAccess.revoke_all` when it withdraws them. The Repository only checks credentials.

- Passwords are hashed with scrypt (``hashlib.scrypt``, parameters in ``policies/repository.yaml``).
  Five failures within an hour lock the account for an hour [V] (all three numbers are settings).
- API keys are 32 random bytes; only their SHA-256 is kept (a key is unguessable, so a slow hash adds
  nothing), and the key is shown once, when issued.
- DCC Boxed's published default API key is accepted only when the DCC Boxed compatibility setting is
  on, and then identifies the holder ``dccboxed-default``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, case, null, or_, select, update

from repository import audience, service_reads
from repository.errors import RepositoryError, conflict
from repository.models import RepositoryApiKey, RepositoryCertificate, RepositorySession, RepositoryUser
from repository.settings import RepositorySettings, default_settings
from repository.store import SERVICE_COLUMNS, SERVICE_COLUMNS_WITH_BODY, ServiceRecord, now_utc, utc
from smki.core.bounded import has_control_characters
from smki.core.db import Database, rows_affected

KEY_PREFIX = "smkirepo_"
MIN_PASSWORD = 12


class AccountLocked(RepositoryError):
    """Too many failed log-ins: the account is locked until ``locked_until``."""


@dataclass(frozen=True)
class Holder:
    """Who a credential belongs to, as the RA named them (for example ``party:ACME/aro:jsmith``)."""

    name: str
    may_lodge_documents: bool = False
    via: str = "api_key"  # api_key, password, dccboxed
    # Repository roles (repository.audience): a portal user's, read afresh with every session check; an API
    # key has none, so it reads the documents lodged for everyone
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KeyedRead:
    """What :meth:`RepositoryAccess.read_with_api_key` read: the key's holder (``None``: refused) and the
    certificates found, in lodging order."""

    holder: Holder | None
    records: list[ServiceRecord]


KEY_PARAMETER = "api_key_sha256"


@lru_cache(maxsize=32)
def keyed_statement(criteria: ColumnElement[bool], limit: int, *, with_body: bool = False) -> Select[Any]:
    """The API key's row joined to the certificates that meet ``criteria``: the key's holder on every row,
    the key's row alone when none is found, and no row at all for an unknown or withdrawn key. The key is
    probed first (a unique index), then the certificates through their ``(column, id)`` index (SQLite reads
    them in ``id`` order; PostgreSQL sorts the few it finds). Build ``criteria`` once: statements are cached
    by it."""
    columns: tuple[Any, ...] = (RepositoryApiKey.holder.label("key_holder"),
                                RepositoryApiKey.may_lodge_documents.label("key_may_lodge_documents"),
                                *(SERVICE_COLUMNS_WITH_BODY if with_body else SERVICE_COLUMNS))
    return (select(*columns)
            .select_from(RepositoryApiKey)
            .outerjoin(RepositoryCertificate, criteria)
            .where(RepositoryApiKey.key_sha256 == bindparam(KEY_PARAMETER), RepositoryApiKey.revoked_at.is_(None))
            .order_by(RepositoryCertificate.id).limit(limit))


@lru_cache(maxsize=32)
def _unkeyed_statement(criteria: ColumnElement[bool], limit: int, *, with_body: bool = False) -> Select[Any]:
    """The same rows for a caller whose key is not in the table (DCC Boxed's published default)."""
    columns: tuple[Any, ...] = (null().label("key_holder"), null().label("key_may_lodge_documents"),
                                *(SERVICE_COLUMNS_WITH_BODY if with_body else SERVICE_COLUMNS))
    return (select(*columns)
            .where(criteria).order_by(RepositoryCertificate.id).limit(limit))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class RepositoryAccess:
    def __init__(self, database: Database, settings: RepositorySettings | None = None) -> None:
        self.database = database
        self.settings = settings or default_settings()

    # --------------------------------------------------------------------------------- passwords
    def _hash_password(self, password: str, salt: bytes | None = None, n: int | None = None,
                       r: int | None = None, p: int | None = None) -> str:
        params = self.settings.access["scrypt"]
        n, r, p = n or int(params["n"]), r or int(params["r"]), p or int(params["p"])
        salt = salt or secrets.token_bytes(16)
        digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * 1024 * 1024)
        return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"

    def _verify_password(self, password: str, stored: str) -> bool:
        try:
            _scheme, n, r, p, salt, digest = stored.split("$")
            expected = self._hash_password(password, base64.b64decode(salt), int(n), int(r), int(p))
        except ValueError:
            return False
        return hmac.compare_digest(expected.rsplit("$", 1)[1], digest)

    def create_user(self, username: str, password: str, holder: str, *, roles: Iterable[str] = ()) -> None:
        """A portal user for ``holder``, holding the Repository ``roles`` (``sec_panel``, ``smki_pma``) if given."""
        held = audience.roles(roles)
        if len(password) < MIN_PASSWORD:
            raise RepositoryError("RP:ACC1", f"a Repository password has at least {MIN_PASSWORD} characters",
                                  field="password")
        username = username.strip()
        if not username or has_control_characters(username):
            raise RepositoryError("RP:ACC2", "a Repository user needs a username of printable characters",
                                  field="username")
        with self.database.session() as session:
            if session.scalar(select(RepositoryUser.id).where(RepositoryUser.username == username)):
                raise conflict("RP:ACC3", f"there is already a Repository user {username!r}")
            session.add(RepositoryUser(username=username, holder=holder, password_hash=self._hash_password(password),
                                       failures=0, disabled=False, created_at=now_utc(),
                                       roles=audience.stored(held) if held else None))

    def set_roles(self, username: str, roles: Iterable[str]) -> frozenset[str]:
        """Make ``roles`` the user's Repository roles (none withdraws them all); effective at its next request."""
        held = audience.roles(roles)
        with self.database.session() as session:
            changed = rows_affected(session.execute(update(RepositoryUser).where(
                RepositoryUser.username == username).values(roles=audience.stored(held) if held else None)))
        if not changed:
            raise RepositoryError("RP:ACC4", f"there is no Repository user {username!r}", field="username",
                                  status=404)
        return held

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise RepositoryError("RP:ACC1", f"a Repository password has at least {MIN_PASSWORD} characters",
                                  field="password")
        with self.database.session() as session:
            session.execute(update(RepositoryUser).where(RepositoryUser.username == username).values(
                password_hash=self._hash_password(password), failures=0, locked_until=None))

    def authenticate_user(self, username: str, password: str, *, now: dt.datetime | None = None) -> Holder | None:
        """The holder for a correct password; ``None`` for a wrong one (counted); raises
        :class:`AccountLocked` while the account is locked, whatever the password.

        Each attempt first reserves one of the window's failures with a single conditional UPDATE, and
        only then checks the password: the database serialises the reservations, so however many
        attempts arrive at once, at most ``lockout_failures`` passwords are ever checked in a window. The
        attempt that takes the last one locks the account before its password is checked; if that
        password turns out right, the lock is lifted again (a correct password always resets the count).
        """
        now = now or now_utc()
        access = self.settings.access
        window_start = now - dt.timedelta(minutes=int(access["lockout_window_minutes"]))
        limit = int(access["lockout_failures"])
        reserved = self._reserve_attempt(username, now, window_start, limit,
                                         locked_until=now + dt.timedelta(minutes=int(access["lockout_minutes"])))
        if reserved is None:
            self._refuse_unreserved(username, password, now)
            return None
        user_id, holder, stored, roles = reserved
        if not self._verify_password(password, stored):
            return None  # the failure was counted when the attempt was reserved
        with self.database.session() as session:
            session.execute(update(RepositoryUser).where(RepositoryUser.id == user_id).values(
                failures=0, failure_window_start=None, locked_until=None))
        return Holder(holder, via="password", roles=audience.loaded(roles))

    def _reserve_attempt(self, username: str, now: dt.datetime, window_start: dt.datetime, limit: int, *,
                         locked_until: dt.datetime) -> tuple[int, str, str, str | None] | None:
        """Count one failure in advance, unless the account is locked, disabled or unknown (``None``)."""
        if has_control_characters(username):
            return None  # no username holds one, and PostgreSQL could not even compare it
        t = RepositoryUser
        window_over = or_(t.failure_window_start.is_(None), t.failure_window_start <= window_start)
        counted = case((window_over, 1), else_=t.failures + 1)
        statement = (update(t)
                     .where(t.username == username, t.disabled.is_(False),
                            or_(t.locked_until.is_(None), t.locked_until <= now),
                            or_(window_over, t.failures < limit))
                     # the attempt that reaches the limit locks at once, and the count starts afresh after it
                     .values(failures=case((counted >= limit, 0), else_=counted),
                             failure_window_start=case((counted >= limit, None), (window_over, now),
                                                       else_=t.failure_window_start),
                             locked_until=case((counted >= limit, locked_until), else_=None))
                     .returning(t.id, t.holder, t.password_hash, t.roles))
        with self.database.session() as session:
            row = session.execute(statement).one_or_none()
        return None if row is None else (row.id, row.holder, row.password_hash, row.roles)

    def _refuse_unreserved(self, username: str, password: str, now: dt.datetime) -> None:
        """Why no attempt could be reserved: a locked account says so; an unknown or disabled one spends
        the time of a real check, so timing does not reveal which usernames exist."""
        locked_until = None
        if not has_control_characters(username):
            with self.database.session() as session:
                row = session.execute(select(RepositoryUser.disabled, RepositoryUser.locked_until)
                                      .where(RepositoryUser.username == username)).one_or_none()
            if row is not None and not row.disabled:
                locked_until = utc(row.locked_until) if row.locked_until is not None else now
        if locked_until is None:
            self._hash_password(password)
            return
        raise AccountLocked("AU:LOCK1", "this Repository account is locked after repeated failed log-ins; "
                            f"try again after {locked_until.isoformat()}", status=403)

    # --------------------------------------------------------------------------------- portal sessions
    def open_session(self, username: str, *, now: dt.datetime | None = None) -> str:
        now = now or now_utc()
        token = secrets.token_urlsafe(32)
        with self.database.session() as session:
            user_id = session.scalar(select(RepositoryUser.id).where(RepositoryUser.username == username))
            if user_id is None:
                raise RepositoryError("RP:ACC4", f"there is no Repository user {username!r}")
            session.add(RepositorySession(token_sha256=hashlib.sha256(token.encode()).hexdigest(), user_id=user_id,
                                          expires_at=now + dt.timedelta(minutes=int(self.settings.access[
                                              "session_minutes"]))))
        return token

    def session_holder(self, token: str, *, now: dt.datetime | None = None) -> tuple[str, Holder] | None:
        now = now or now_utc()
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.database.session() as session:
            row = session.execute(select(RepositoryUser.username, RepositoryUser.holder, RepositoryUser.disabled,
                                         RepositoryUser.roles, RepositorySession.expires_at)
                                  .join(RepositoryUser, RepositoryUser.id == RepositorySession.user_id)
                                  .where(RepositorySession.token_sha256 == digest)).one_or_none()
        if row is None or row.disabled or utc(row.expires_at) <= now:
            return None
        return row.username, Holder(row.holder, via="password", roles=audience.loaded(row.roles))

    def close_session(self, token: str) -> None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.database.session() as session:
            row = session.scalars(select(RepositorySession).where(RepositorySession.token_sha256 == digest)
                                  ).one_or_none()
            if row is not None:
                session.delete(row)

    # --------------------------------------------------------------------------------- API keys
    def issue_api_key(self, holder: str, *, may_lodge_documents: bool = False) -> str:
        """A new API key for ``holder``; the only time the key itself is ever seen."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.database.session() as session:
            session.add(RepositoryApiKey(key_sha256=hashlib.sha256(key.encode()).hexdigest(),
                                         prefix=key[:len(KEY_PREFIX) + 4], holder=holder,
                                         may_lodge_documents=may_lodge_documents, created_at=now_utc()))
        return key

    def authenticate_api_key(self, key: str | None, *, dccboxed_compatible: bool = False) -> Holder | None:
        if not key:
            return None
        if self._is_dccboxed_default(key, dccboxed_compatible):
            return self._dccboxed_holder()
        digest = hashlib.sha256(key.encode()).hexdigest()
        with self.database.session() as session:
            row = session.execute(select(RepositoryApiKey.holder, RepositoryApiKey.may_lodge_documents)
                                  .where(RepositoryApiKey.key_sha256 == digest,
                                         RepositoryApiKey.revoked_at.is_(None))).one_or_none()
        return Holder(row.holder, bool(row.may_lodge_documents)) if row else None

    def read_with_api_key(self, key: str | None, criteria: ColumnElement[bool], parameters: dict[str, Any], *,
                          limit: int, with_body: bool = False, dccboxed_compatible: bool = False) -> KeyedRead:
        """The certificates meeting ``criteria`` (at most ``limit``, with ``parameters`` bound; with their
        bodies if ``with_body``), read by the same statement that checks the API key: one round trip on the
        thread's own connection (:mod:`repository.service_reads`). There is no key cache: a key withdrawn a
        moment ago is refused by the very next request to every worker of every process, as the check costs
        one probe of a unique index inside a statement that runs anyway.

        For a missing, unknown or withdrawn key there is no holder and no record."""
        if not key:
            return KeyedRead(None, [])
        if self._is_dccboxed_default(key, dccboxed_compatible):
            rows = service_reads.read(self.database, _unkeyed_statement(criteria, limit, with_body=with_body),
                                      parameters)
            return KeyedRead(self._dccboxed_holder(), [ServiceRecord(*row[2:]) for row in rows])
        digest = hashlib.sha256(key.encode()).hexdigest()
        rows = service_reads.read(self.database, keyed_statement(criteria, limit, with_body=with_body),
                                  {**parameters, KEY_PARAMETER: digest})
        if not rows:
            return KeyedRead(None, [])
        holder = Holder(rows[0][0], bool(rows[0][1]))
        return KeyedRead(holder, [ServiceRecord(*row[2:]) for row in rows if row[2] is not None])

    def _is_dccboxed_default(self, key: str, dccboxed_compatible: bool) -> bool:
        return dccboxed_compatible and hmac.compare_digest(key.encode(),
                                                           str(self.settings.dccboxed["default_api_key"]).encode())

    def _dccboxed_holder(self) -> Holder:
        return Holder(str(self.settings.dccboxed["holder"]), via="dccboxed")

    def revoke_all(self, holder: str) -> int:
        """Withdraw every credential of ``holder``: API keys revoked, users disabled, sessions ended."""
        now = now_utc()
        with self.database.session() as session:
            keys = rows_affected(session.execute(update(RepositoryApiKey).where(
                RepositoryApiKey.holder == holder, RepositoryApiKey.revoked_at.is_(None)).values(revoked_at=now)))
            users = session.scalars(select(RepositoryUser).where(RepositoryUser.holder == holder)).all()
            for user in users:
                user.disabled = True
                for stale in session.scalars(select(RepositorySession).where(RepositorySession.user_id == user.id)):
                    session.delete(stale)
            return int(keys) + len(users)
