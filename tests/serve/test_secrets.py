"""Issue 8 item 2: every secret an instance needs is made once, atomically, before the web workers start.

A fresh ``smki serve`` used to race on the portal session key: each worker made it on boot through one shared
``.tmp`` name, so some workers failed (``FileNotFoundError ... portal-session-key.secret.tmp``) and those that
booted could hold different keys, and portal sign-in then worked only on some requests.
"""

from __future__ import annotations

import http.client
import multiprocessing
import re
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import lxml.html

from smki.core.config import DEFAULT_POLICIES_DIR, Settings
from smki.instance import SESSION_KEY, Instance
from smki.ra.population import PopulationBuilder
from smki.ra.service import RegistrationAuthority
from tests.serve.served import serving, worker_of

PROCESSES = 6
CONNECTIONS = 40  # new connections tried to reach another worker: each lands on one at random


def _app_secret_key(directory: str, database_url: str, ready: multiprocessing.synchronize.Barrier,
                    results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One web worker booting: the app of a brand-new instance, its session key reported back."""
    try:
        from smki.core.db import forget_inherited_connections
        from smki.web import create_app

        forget_inherited_connections()  # forked: the parent's pooled connections are not this process's
        settings = Settings(Path(directory), database_url, DEFAULT_POLICIES_DIR, None)
        ready.wait(timeout=60)
        results.put(("key", bytes(create_app(Instance(settings)).secret_key).hex()))  # type: ignore[arg-type]
    except BaseException as error:  # reported to the test, which fails on it
        results.put(("error", repr(error)))


def test_processes_making_the_session_key_at_once_all_get_one_key_and_none_fails(tmp_path: Path) -> None:
    from smki.web import create_app

    # Everything the app imports on first use, imported before the fork: the processes then reach the key at once.
    create_app(Instance(Settings(tmp_path / "warm-up", f"sqlite:///{tmp_path / 'warm-up.db'}", DEFAULT_POLICIES_DIR,
                                 None)))
    directory = tmp_path / "new-instance"  # no key store yet: its passphrase is made in the race as well
    context = multiprocessing.get_context("fork")
    ready, results = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=_app_secret_key,
                                 args=(str(directory), f"sqlite:///{tmp_path / 'smki.db'}", ready, results))
                 for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    try:
        reported = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    assert [text for kind, text in reported if kind == "error"] == []
    keys = {text for _kind, text in reported}
    assert len(keys) == 1
    stored = Instance(Settings(directory, "sqlite://", DEFAULT_POLICIES_DIR, None)).keystore.get_secret(SESSION_KEY)
    assert keys == {stored.hex()}
    assert not list((directory / "keystore").glob("*.tmp"))  # nothing left half-made


def _cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def _header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def test_sign_in_on_a_freshly_served_instance_works_on_every_worker(instance: Instance, tmp_path: Path) -> None:
    operator = PopulationBuilder(RegistrationAuthority(instance)).member(None, "Rita RA-Operator", "ra_operator")
    assert not list((instance.settings.keystore_dir).glob(f"{SESSION_KEY}*"))  # the workers' first start

    with serving(instance, tmp_path, "--no-worker", SMKI_WEB_WORKERS="3", SMKI_WEB_THREADS="2") as served:
        assert "with 3 web workers of 2 threads" in served.output()  # the environment sets them
        connections: dict[int, http.client.HTTPConnection] = {}
        for _ in range(CONNECTIONS):
            if len(connections) == 3:
                break
            connection = served.connect()
            worker = worker_of(connection)
            if worker in connections:
                connection.close()
            else:
                connections[worker] = connection
        assert len(connections) >= 2, "every new connection went to one worker"
        assert not re.search(r"Traceback|exited with code|failed to boot", served.output()), served.output()
        first, second = list(connections)[:2]

        # The sign-in page from one worker, the sign-in itself answered by another.
        connections[first].request("GET", "/portal/login")
        page = connections[first].getresponse()
        body = page.read()
        assert page.status == 200
        cookies = _cookies(page)
        [csrf_token] = lxml.html.fromstring(body).xpath("//form//input[@name='csrf_token']/@value")

        form = urlencode({"token": operator.token, "csrf_token": csrf_token})
        connections[second].request("POST", "/portal/login", body=form, headers={
            **_header(cookies), "Content-Type": "application/x-www-form-urlencoded"})
        signed_in = connections[second].getresponse()
        assert signed_in.status == 302, signed_in.read()[:500]
        signed_in.read()
        cookies.update(_cookies(signed_in))

        # Every worker knows the session another one signed.
        for worker, connection in connections.items():
            connection.request("GET", "/portal/", headers=_header(cookies))
            home = connection.getresponse()
            text = home.read().decode()
            assert home.status == 200 and "Welcome" in text, (worker, home.status, text[:300])
            connection.close()
