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
from dataclasses import dataclass

from sqlalchemy import select, update

from repository.errors import RepositoryError, conflict
from repository.models import RepositoryApiKey, RepositorySession, RepositoryUser
from repository.settings import RepositorySettings, default_settings
from repository.store import now_utc, utc
from smki.core.db import Database

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

    def create_user(self, username: str, password: str, holder: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise RepositoryError("RP:ACC1", f"a Repository password has at least {MIN_PASSWORD} characters",
                                  field="password")
        username = username.strip()
        if not username:
            raise RepositoryError("RP:ACC2", "a Repository user needs a username", field="username")
        with self.database.session() as session:
            if session.scalar(select(RepositoryUser.id).where(RepositoryUser.username == username)):
                raise conflict("RP:ACC3", f"there is already a Repository user {username!r}")
            session.add(RepositoryUser(username=username, holder=holder, password_hash=self._hash_password(password),
                                       failures=0, disabled=False, created_at=now_utc()))

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise RepositoryError("RP:ACC1", f"a Repository password has at least {MIN_PASSWORD} characters",
                                  field="password")
        with self.database.session() as session:
            session.execute(update(RepositoryUser).where(RepositoryUser.username == username).values(
                password_hash=self._hash_password(password), failures=0, locked_until=None))

    def authenticate_user(self, username: str, password: str, *, now: dt.datetime | None = None) -> Holder | None:
        """The holder for a correct password; ``None`` for a wrong one (counted); raises
        :class:`AccountLocked` while the account is locked, whatever the password."""
        now = now or now_utc()
        access = self.settings.access
        window = dt.timedelta(minutes=int(access["lockout_window_minutes"]))
        with self.database.session() as session:
            user = session.scalars(select(RepositoryUser).where(RepositoryUser.username == username)
                                   .with_for_update()).one_or_none()
            if user is None or user.disabled:
                # spend the same time as a real check, so timing does not reveal which usernames exist
                self._hash_password(password)
                return None
            if user.locked_until is not None and utc(user.locked_until) > now:
                raise AccountLocked("AU:LOCK1", "this Repository account is locked after repeated failed log-ins; "
                                    f"try again after {utc(user.locked_until).isoformat()}", status=403)
            if self._verify_password(password, user.password_hash):
                user.failures, user.failure_window_start, user.locked_until = 0, None, None
                return Holder(user.holder, via="password")
            if user.failure_window_start is None or now - utc(user.failure_window_start) > window:
                user.failure_window_start, user.failures = now, 0
            user.failures += 1
            if user.failures >= int(access["lockout_failures"]):
                user.locked_until = now + dt.timedelta(minutes=int(access["lockout_minutes"]))
                user.failures, user.failure_window_start = 0, None
            return None

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
                                         RepositorySession.expires_at)
                                  .join(RepositoryUser, RepositoryUser.id == RepositorySession.user_id)
                                  .where(RepositorySession.token_sha256 == digest)).one_or_none()
        if row is None or row.disabled or utc(row.expires_at) <= now:
            return None
        return row.username, Holder(row.holder, via="password")

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
        dccboxed = self.settings.dccboxed
        if dccboxed_compatible and hmac.compare_digest(key.encode(), str(dccboxed["default_api_key"]).encode()):
            return Holder(str(dccboxed["holder"]), via="dccboxed")
        digest = hashlib.sha256(key.encode()).hexdigest()
        with self.database.session() as session:
            row = session.execute(select(RepositoryApiKey.holder, RepositoryApiKey.may_lodge_documents)
                                  .where(RepositoryApiKey.key_sha256 == digest,
                                         RepositoryApiKey.revoked_at.is_(None))).one_or_none()
        return Holder(row.holder, bool(row.may_lodge_documents)) if row else None

    def revoke_all(self, holder: str) -> int:
        """Withdraw every credential of ``holder``: API keys revoked, users disabled, sessions ended."""
        now = now_utc()
        with self.database.session() as session:
            keys = session.execute(update(RepositoryApiKey).where(RepositoryApiKey.holder == holder,
                                                                  RepositoryApiKey.revoked_at.is_(None))
                                   .values(revoked_at=now)).rowcount
            users = session.scalars(select(RepositoryUser).where(RepositoryUser.holder == holder)).all()
            for user in users:
                user.disabled = True
                for stale in session.scalars(select(RepositorySession).where(RepositorySession.user_id == user.id)):
                    session.delete(stale)
            return int(keys) + len(users)
