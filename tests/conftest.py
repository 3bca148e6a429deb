"""Shared fixtures. Every test that touches a database runs against SQLite by default, and against
PostgreSQL when SMKI_TEST_POSTGRES_URL is set (``.ci/run`` runs the suite both ways)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text

from smki.bootstrap import initialise
from smki.core.config import DEFAULT_POLICIES_DIR, PROJECT_ROOT, Settings
from smki.core.db import dispose_all, normalise_url
from smki.instance import Instance
from smki.schema import migrate

INTEROP_DIR = Path(os.environ.get("SMKI_INTEROP_DIR", PROJECT_ROOT.parent / "shared" / "interop"))

# Property tests (tests/properties) explore at random locally; under CI the same examples every run, so a
# failure there repeats, and no example database is kept between runs.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="session")
def interop_dir() -> Path:
    """The DCC's public test certificates, read in place (never copied into the project)."""
    if not INTEROP_DIR.is_dir():
        pytest.skip(f"interop vectors not found at {INTEROP_DIR}: set SMKI_INTEROP_DIR to the "
                    "shared/interop folder to run these tests")
    return INTEROP_DIR


def postgres_url() -> str | None:
    return os.environ.get("SMKI_TEST_POSTGRES_URL")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test: a SQLite file, or a PostgreSQL schema of its own."""
    base = postgres_url()
    if not base:
        yield f"sqlite:///{tmp_path / 'smki.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    from repository.request_log import flush_all

    flush_all()  # the Repository's batched request log writes this test's rows while its schema still exists
    dispose_all()
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def template_instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bootstrapped hierarchy for the whole run; each test gets a copy (key generation is slow-ish)."""
    directory = tmp_path_factory.mktemp("template") / "instance"
    settings = Settings(directory, f"sqlite:///{directory.parent / 'template.db'}", DEFAULT_POLICIES_DIR, None)
    initialise(Instance(settings))
    return directory


@pytest.fixture
def instance(tmp_path: Path, database_url: str, template_instance_dir: Path) -> Instance:
    """A ready sandbox instance: the shared hierarchy, and its own fresh, migrated database."""
    directory = tmp_path / "instance"
    shutil.copytree(template_instance_dir, directory)
    settings = Settings(directory, database_url, DEFAULT_POLICIES_DIR, None)
    sandbox = Instance(settings)
    migrate(sandbox.database)
    return sandbox


@pytest.fixture
def fresh_instance(tmp_path: Path, database_url: str) -> Instance:
    """An instance with nothing in it yet, for tests of ``smki init`` itself."""
    settings = Settings(tmp_path / "fresh", database_url, DEFAULT_POLICIES_DIR, None)
    return Instance(settings)


# ---- portal tests: a real headless Chromium against the app served on a loopback port ----

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(chromium: object) -> object:
    """The shared Chromium, with no cookies or storage left by an earlier test: cookies for 127.0.0.1 are
    shared across ports, so one test's portal login would otherwise carry into the next test's server."""
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})  # type: ignore[attr-defined]
    chromium.execute_cdp_cmd("Storage.clearDataForOrigin",  # type: ignore[attr-defined]
                             {"origin": "*", "storageTypes": "all"})
    return chromium


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's Chromium through its matching ChromeDriver. Skips, saying why, where they are absent,
    except under CI, where a missing browser is a failure (``make test`` installs it)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "chromium/chromedriver not installed: run scripts/ensure-browser.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # The flags the machines need: no sandbox as root, and no background calls to a network there is not.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1024"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(5)  # pages submit forms and redirect; find_element waits for the next page
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def serving(app: object, **options: object) -> Iterator[int]:
    """Serve a WSGI app on a free loopback port in a thread for the duration; yields the port."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True, **options)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def live_server(instance: Instance) -> Iterator[str]:
    """The sandbox's Flask app served on a free loopback port for the test; yields its base URL."""
    from smki.web import create_app

    with serving(create_app(instance)) as port:
        yield f"http://127.0.0.1:{port}"
