"""The password lockout holds under concurrency (issue 8 item 4): however many sign-ins arrive at once,
at most five passwords are checked in a window, and the right password is refused once the account is
locked, even inside the burst that locked it. Every sign-in (the portal's too) goes through
``RepositoryAccess.authenticate_user``; the tests count the password checks by wrapping the verifier."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from repository.access import AccountLocked, Holder, RepositoryAccess

PASSWORD = "correct horse battery"
WRONG = "bad password!!"
BURST = 40
LIMIT = 5
WAIT = 20.0  # seconds; only reached if the behaviour under test is broken


class CountedChecks:
    """Wraps the password verifier: counts right and wrong checks, and can hold wrong ones open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.hold_wrong_until: threading.Event | None = None
        self.wrong_started = threading.Condition(self.lock)
        verify = RepositoryAccess._verify_password

        def counted(access: RepositoryAccess, password: str, stored: str) -> bool:
            with self.lock:
                self.counts["right" if password == PASSWORD else "wrong"] += 1
                self.wrong_started.notify_all()
            if password != PASSWORD and self.hold_wrong_until is not None:
                self.hold_wrong_until.wait(WAIT)
            return verify(access, password, stored)

        monkeypatch.setattr(RepositoryAccess, "_verify_password", counted)

    def wait_for_wrong_checks(self, count: int) -> bool:
        with self.lock:
            return self.wrong_started.wait_for(lambda: self.counts["wrong"] >= count, WAIT)


def attempt(access: RepositoryAccess, username: str, password: str,
            start: threading.Barrier | None = None) -> Callable[[], str]:
    def run() -> str:
        if start is not None:
            start.wait(WAIT)
        try:
            holder = access.authenticate_user(username, password)
        except AccountLocked:
            return "locked"
        return "signed in" if isinstance(holder, Holder) else "refused"
    return run


def test_a_burst_of_wrong_passwords_gets_at_most_five_checks(access: RepositoryAccess,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    access.create_user("aro-burst", PASSWORD, "party:ACME/aro:burst")
    checks = CountedChecks(monkeypatch)
    start = threading.Barrier(BURST)
    with ThreadPoolExecutor(BURST) as pool:
        outcomes = Counter(pool.map(lambda run: run(), [attempt(access, "aro-burst", WRONG, start)] * BURST))

    assert checks.counts["wrong"] <= LIMIT
    assert outcomes["refused"] == checks.counts["wrong"] and outcomes["signed in"] == 0
    assert outcomes["locked"] == BURST - outcomes["refused"]
    with pytest.raises(AccountLocked):
        access.authenticate_user("aro-burst", PASSWORD)
    assert checks.counts["right"] == 0, "a locked account never has its password checked"


def test_the_right_password_inside_the_burst_is_refused_once_five_are_being_checked(
        access: RepositoryAccess, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wrong checks are held open until the right password has had its answer, so it arrives while
    five failures are already in flight: exactly the moment at which the lockout used to be bypassed."""
    access.create_user("aro-inside", PASSWORD, "party:ACME/aro:inside")
    checks = CountedChecks(monkeypatch)
    checks.hold_wrong_until = threading.Event()
    start = threading.Barrier(BURST - 1)
    with ThreadPoolExecutor(BURST) as pool:
        wrong = [pool.submit(attempt(access, "aro-inside", WRONG, start)) for _ in range(BURST - 1)]
        assert checks.wait_for_wrong_checks(LIMIT), "five wrong passwords should be in the middle of being checked"
        try:
            right = attempt(access, "aro-inside", PASSWORD)()
        finally:
            checks.hold_wrong_until.set()
        outcomes = Counter(future.result(WAIT) for future in wrong)

    assert right == "locked"
    assert checks.counts == Counter(wrong=LIMIT), checks.counts
    assert outcomes == Counter(refused=LIMIT, locked=BURST - 1 - LIMIT)


def test_a_right_password_before_the_limit_resets_the_count(access: RepositoryAccess) -> None:
    access.create_user("aro-reset", PASSWORD, "party:ACME/aro:reset")
    for _ in range(LIMIT - 1):
        assert access.authenticate_user("aro-reset", WRONG) is None
    assert access.authenticate_user("aro-reset", PASSWORD) is not None
    for _ in range(LIMIT - 1):
        assert access.authenticate_user("aro-reset", WRONG) is None
    assert access.authenticate_user("aro-reset", PASSWORD) is not None


def test_unknown_and_disabled_users_are_refused_without_a_lock_message(access: RepositoryAccess) -> None:
    access.create_user("aro-gone", PASSWORD, "party:ACME/aro:gone")
    access.revoke_all("party:ACME/aro:gone")
    for _ in range(LIMIT + 2):
        assert access.authenticate_user("aro-gone", PASSWORD) is None
        assert access.authenticate_user("nobody at all", PASSWORD) is None
        assert access.authenticate_user("nul\x00name", PASSWORD) is None
