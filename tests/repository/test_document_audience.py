"""A document lodged for some Repository roles: the readers holding one see it, everyone else is not shown
that it exists, through every route that lists or serves documents (store, JSON API by key and by portal
session, portal pages), and a role is read afresh on every request."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from repository import audience
from repository.access import RepositoryAccess
from repository.documents import DocumentStore
from repository.errors import RepositoryError
from smki.instance import Instance
from tests.portal import form_token

PASSWORD = "a long enough password"
RESTRICTED = "variance-full"
PUBLIC = "variance-published"


@pytest.fixture
def documents(instance: Instance) -> DocumentStore:
    store = DocumentStore(instance.database)
    store.lodge(PUBLIC, b"published v1", title="Published", media_type="text/csv", lodged_by="dcc")
    store.lodge(RESTRICTED, b"full v1: Alpha Energy", title="Full", media_type="text/csv", lodged_by="dcc",
                audience=["smki_pma", "sec_panel"])
    store.lodge(RESTRICTED, b"full v2: Alpha Energy", title="Full", media_type="text/csv", lodged_by="dcc",
                audience=["sec_panel", "smki_pma"])
    return store


def names(listed: list) -> set[str]:
    return {d.name for d in listed}


# ------------------------------------------------------------------------------------------ the store
def test_the_store_shows_a_restricted_document_only_to_a_role_in_its_audience(documents: DocumentStore) -> None:
    for outsider in ((), ("unrelated",)):
        assert names(documents.latest(reader_roles=outsider)) == {PUBLIC}
        assert documents.versions(RESTRICTED, reader_roles=outsider) == []
        for version in (None, 1, 2):
            with pytest.raises(RepositoryError) as refused:
                documents.content(RESTRICTED, version, reader_roles=outsider)
            with pytest.raises(RepositoryError) as missing:
                documents.content("never-lodged", version, reader_roles=outsider)
            assert (refused.value.code, refused.value.status) == (missing.value.code, missing.value.status) \
                == ("RP:DOC7", 404)
            assert refused.value.message == missing.value.message.replace("never-lodged", RESTRICTED)
    for role in ("sec_panel", "smki_pma"):
        latest = {d.name: d for d in documents.latest(reader_roles={role})}
        assert set(latest) == {PUBLIC, RESTRICTED}
        assert latest[RESTRICTED].version == 2 and latest[RESTRICTED].summary()["audience"] == ["sec_panel",
                                                                                                 "smki_pma"]
        assert latest[PUBLIC].summary()["audience"] == "all"
        assert [v.version for v in documents.versions(RESTRICTED, reader_roles={role})] == [2, 1]
        assert documents.content(RESTRICTED, 1, reader_roles={role})[1] == b"full v1: Alpha Energy"


def test_lodging_refuses_an_unknown_role_and_a_change_of_audience(documents: DocumentStore) -> None:
    with pytest.raises(RepositoryError) as unknown:
        documents.lodge("other", b"x", title="x", media_type="text/plain", lodged_by="dcc", audience=["panel"])
    assert unknown.value.code == "RP:DOC10" and "sec_panel" in unknown.value.message
    with pytest.raises(RepositoryError) as both:
        documents.lodge("other", b"x", title="x", media_type="text/plain", lodged_by="dcc",
                        audience=["all", "smki_pma"])
    assert both.value.code == "RP:DOC10"
    alone = documents.lodge("pma-only", b"x", title="x", media_type="text/plain", lodged_by="dcc", audience="smki_pma")
    assert alone.audience == {"smki_pma"}   # one role given as a string, not as its letters
    for name, changed in ((RESTRICTED, None), (RESTRICTED, ["smki_pma"]), (PUBLIC, ["sec_panel"])):
        with pytest.raises(RepositoryError) as refused:
            documents.lodge(name, b"x", title="x", media_type="text/csv", lodged_by="dcc", audience=changed)
        assert refused.value.code == "RP:DOC11" and refused.value.status == 409
    assert [v.version for v in documents.versions(RESTRICTED, reader_roles={"smki_pma"})] == [2, 1]  # no write
    assert documents.lodge(PUBLIC, b"v2", title="x", media_type="text/csv", lodged_by="dcc",
                           audience=["all"]).version == 2


@given(st.frozensets(st.sampled_from(audience.ROLES)), st.frozensets(st.sampled_from((*audience.ROLES, "other"))))
def test_the_stored_audiences_a_reader_may_read_are_exactly_those_it_shares_a_role_with(
        document_audience: frozenset[str], reader: frozenset[str]) -> None:
    stored = audience.stored(document_audience)
    assert audience.loaded(stored) == document_audience
    assert (stored in audience.visible(reader)) == audience.may_read(document_audience, reader)


# ------------------------------------------------------------------------------------------ users and roles
def test_roles_are_data_on_the_user_checked_against_the_known_roles(access: RepositoryAccess) -> None:
    with pytest.raises(RepositoryError) as bad:
        access.create_user("panel-reader", PASSWORD, "sec-panel/person:1", roles=["panel"])
    assert bad.value.code == "RP:ACC5"
    access.create_user("panel-reader", PASSWORD, "sec-panel/person:1", roles=["sec_panel"])
    holder = access.authenticate_user("panel-reader", PASSWORD)
    assert holder is not None and holder.roles == {"sec_panel"}
    assert access.set_roles("panel-reader", ["sec_panel", "smki_pma"]) == {"sec_panel", "smki_pma"}
    with pytest.raises(RepositoryError) as nobody:
        access.set_roles("no-such-user", ["sec_panel"])
    assert nobody.value.code == "RP:ACC4" and nobody.value.status == 404
    with pytest.raises(RepositoryError) as unknown:
        access.set_roles("panel-reader", ["sec_panel", "root"])
    assert unknown.value.code == "RP:ACC5"
    assert access.authenticate_user("panel-reader", PASSWORD).roles == {"sec_panel", "smki_pma"}  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ the web routes
def log_in(client, username: str) -> None:
    response = client.post("/repository/login", data={"username": username, "password": PASSWORD,
                                                      "csrf_token": form_token(client, "/repository/login")})
    assert response.status_code == 302, response.get_data(as_text=True)


def api_view(client, headers: dict[str, str]) -> dict[str, Any]:
    """What the JSON API shows this caller: the listing, and the answers for the restricted document and a
    missing one side by side."""
    listed = client.get("/api/v1/repository/documents", headers=headers)
    assert listed.status_code == 200
    out: dict[str, Any] = {"listed": {d["name"] for d in listed.get_json()["documents"]}}
    for label, name in (("restricted", RESTRICTED), ("missing", "never-lodged")):
        for route in (f"/api/v1/repository/documents/{name}", f"/api/v1/repository/documents/{name}/content",
                      f"/api/v1/repository/documents/{name}/content?version=1"):
            response = client.get(route, headers=headers)
            body = response.get_json(silent=True) or {}
            out[f"{label} {route.replace(name, '<name>')}"] = (
                response.status_code, body.get("code"), str(body.get("detail", "")).replace(name, "<name>"))
    return out


def test_the_json_api_hides_a_restricted_document_from_an_api_key_and_a_user_without_the_role(
        client, access: RepositoryAccess, documents: DocumentStore) -> None:
    key = access.issue_api_key("party:ACME/aro:1")
    view = api_view(client, {"X-API-Key": key})
    assert view.pop("listed") == {PUBLIC}
    for route in ("/api/v1/repository/documents/<name>", "/api/v1/repository/documents/<name>/content",
                  "/api/v1/repository/documents/<name>/content?version=1"):
        assert view[f"restricted {route}"] == view[f"missing {route}"]
        assert view[f"restricted {route}"][:2] == (404, "RP:DOC7")

    access.create_user("aro-plain", PASSWORD, "party:ACME/aro:2")
    log_in(client, "aro-plain")
    assert api_view(client, {}).pop("listed") == {PUBLIC}


def test_the_json_api_serves_a_restricted_document_to_a_portal_session_holding_a_role(
        client, access: RepositoryAccess, documents: DocumentStore) -> None:
    access.create_user("pma-reader", PASSWORD, "smki-pma/person:1", roles=["smki_pma"])
    log_in(client, "pma-reader")
    assert {d["name"] for d in client.get("/api/v1/repository/documents").get_json()["documents"]} == {
        PUBLIC, RESTRICTED}
    versions = client.get(f"/api/v1/repository/documents/{RESTRICTED}").get_json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    content = client.get(f"/api/v1/repository/documents/{RESTRICTED}/content?version=1")
    assert content.status_code == 200 and content.data == b"full v1: Alpha Energy"

    access.set_roles("pma-reader", [])  # withdrawn: the very next request of the open session is refused
    assert client.get(f"/api/v1/repository/documents/{RESTRICTED}/content").get_json()["code"] == "RP:DOC7"


def test_the_api_lodges_for_an_audience_and_refuses_a_malformed_one(
        client, access: RepositoryAccess, documents: DocumentStore) -> None:
    pma = access.issue_api_key("smki-pma/aro:smith", may_lodge_documents=True)
    body = {"name": "pma-minutes", "title": "Minutes", "media_type": "text/plain",
            "content_base64": base64.b64encode(b"minutes").decode()}
    for bad in ([], "sec_panel", [1], ["panel"]):
        refused = client.post("/api/v1/repository/documents", json={**body, "audience": bad},
                              headers={"X-API-Key": pma})
        assert refused.status_code == 400 and refused.get_json()["code"] == "RP:DOC10", bad
    lodged = client.post("/api/v1/repository/documents", json={**body, "audience": ["smki_pma"]},
                         headers={"X-API-Key": pma})
    assert lodged.status_code == 201 and lodged.get_json()["audience"] == ["smki_pma"]
    assert names(documents.latest()) == {PUBLIC}
    assert names(documents.latest(reader_roles={"smki_pma"})) == {PUBLIC, RESTRICTED, "pma-minutes"}
    assert names(documents.latest(reader_roles={"sec_panel"})) == {PUBLIC, RESTRICTED}


def test_the_portal_lists_and_serves_a_restricted_document_only_to_a_role_in_its_audience(
        client, app, access: RepositoryAccess, documents: DocumentStore) -> None:
    access.create_user("aro-plain", PASSWORD, "party:ACME/aro:2")
    access.create_user("panel-reader", PASSWORD, "sec-panel/person:1", roles=["sec_panel"])
    log_in(client, "aro-plain")
    page = client.get("/repository/documents")
    assert page.status_code == 200 and b"Published" in page.data and RESTRICTED.encode() not in page.data
    refused = client.get(f"/repository/documents/{RESTRICTED}/1")
    missing = client.get("/repository/documents/never-lodged/1")
    assert refused.status_code == missing.status_code == 404
    assert refused.data.replace(RESTRICTED.encode(), b"<name>") == missing.data.replace(b"never-lodged", b"<name>")
    assert b"RP:DOC7" in refused.data

    reader = app.test_client()
    log_in(reader, "panel-reader")
    page = reader.get("/repository/documents")
    assert RESTRICTED.encode() in page.data and b"version 2" in page.data
    download = reader.get(f"/repository/documents/{RESTRICTED}/2")
    assert download.status_code == 200 and download.data == b"full v2: Alpha Energy"


# ------------------------------------------------------------------------------------------ the operator's paths
def test_the_cli_creates_a_reader_with_a_role_and_sets_roles(instance: Instance, monkeypatch) -> None:
    from smki.cli import main

    monkeypatch.setenv("SMKI_INSTANCE", str(instance.settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", instance.settings.database_url)
    runner = CliRunner()
    created = runner.invoke(main, ["repository", "add-user", "panel-1", "--holder", "sec-panel/person:1",
                                   "--role", "sec_panel", "--password", PASSWORD])
    assert created.exit_code == 0 and "with roles sec_panel" in created.output, created.output
    access = RepositoryAccess(instance.database)
    assert access.authenticate_user("panel-1", PASSWORD).roles == {"sec_panel"}  # type: ignore[union-attr]
    both = runner.invoke(main, ["repository", "set-roles", "panel-1", "--role", "sec_panel", "--role", "smki_pma"])
    assert both.exit_code == 0 and "holds sec_panel, smki_pma" in both.output
    bad = runner.invoke(main, ["repository", "set-roles", "panel-1", "--role", "admin"])
    assert bad.exit_code == 2 and "RP:ACC5" in bad.output
    nobody = runner.invoke(main, ["repository", "set-roles", "ghost", "--role", "sec_panel"])
    assert nobody.exit_code == 2 and "RP:ACC4" in nobody.output
    none = runner.invoke(main, ["repository", "set-roles", "panel-1"])
    assert none.exit_code == 0 and "holds no roles" in none.output
    assert access.authenticate_user("panel-1", PASSWORD).roles == frozenset()  # type: ignore[union-attr]


def test_the_demo_makes_a_pma_reader_of_restricted_documents(instance: Instance, app,
                                                             documents: DocumentStore) -> None:
    from smki.ra.demo import seed_demo

    folder = seed_demo(instance)
    pma = next(p for p in json.loads((folder / "credentials.json").read_text())["people"] if p["role"] == "pma")
    assert pma["repository_roles"] == "smki_pma"
    readme = (folder / "README.txt").read_text()
    assert pma["repository_username"] in readme and pma["repository_password"] in readme
    client = app.test_client()
    response = client.post("/repository/login", data={
        "username": pma["repository_username"], "password": pma["repository_password"],
        "csrf_token": form_token(client, "/repository/login")})
    assert response.status_code == 302
    assert client.get(f"/repository/documents/{RESTRICTED}/2").data == b"full v2: Alpha Energy"
