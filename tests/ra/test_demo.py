"""``smki demo`` seeds a population a new user can submit a CSR with at once."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from smki.cli import main
from smki.ra import audit


def test_demo_seeds_a_population_ready_to_submit_a_csr(instance, monkeypatch, app) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMKI_INSTANCE", str(instance.settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", instance.settings.database_url)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    folder = instance.settings.instance_dir / "demo"
    credentials = json.loads((folder / "credentials.json").read_text())
    categories = {party["category"] for party in credentials["parties"]}
    assert categories == {"dcc", "large_supplier", "small_supplier", "electricity_network", "gas_network", "other",
                          "manufacturer"}
    roles = {person["role"] for person in credentials["people"]}
    assert roles == {"sro", "aro", "ra_operator", "pma", "code_admin"}
    assert (folder / "credentials.json").stat().st_mode & 0o077 == 0

    # the README's curl, through the test client: the sample CSR with the named ARO's token
    aro = next(p for p in credentials["people"] if p["name"] == "Tom Akers")
    csr = (folder / "sample-supplier-ds.csr").read_bytes()
    response = app.test_client().post("/api/v1/ra/csr/organisation", data=csr,
                                      headers={"Authorization": f"Bearer {aro['api_token']}",
                                               "Content-Type": "application/pkcs10"})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["decision"]["rule"] == "org.role.supplier"

    again = CliRunner().invoke(main, ["demo"])  # idempotent
    assert again.exit_code == 0 and json.loads((folder / "credentials.json").read_text()) == credentials
    assert audit.verify(instance.database).intact


def test_demo_prints_a_repository_user_who_can_sign_in_to_the_repository_portal(instance, monkeypatch, app) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMKI_INSTANCE", str(instance.settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", instance.settings.database_url)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    username = re.search(r"^\s*username: (\S+)$", result.output, re.MULTILINE)
    password = re.search(r"^\s*password: (\S+)$", result.output, re.MULTILINE)
    assert username and password, result.output

    browser = app.test_client()
    page = browser.get("/repository/login")
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page.data)
    form = {"username": username[1], "password": password[1], **({"csrf_token": token[1].decode()} if token else {})}
    signed_in = browser.post("/repository/login", data=form)
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    search = browser.get(signed_in.headers["Location"])
    assert search.status_code == 200 and b"Log in to the SMKI Repository" not in search.data

    wrong = app.test_client()
    token = re.search(rb'name="csrf_token" value="([^"]+)"', wrong.get("/repository/login").data)
    refused = wrong.post("/repository/login", data={**form, "password": password[1] + "x",
                                                    **({"csrf_token": token[1].decode()} if token else {})})
    assert refused.status_code == 401
    assert audit.verify(instance.database).intact
