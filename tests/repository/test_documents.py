"""Lodged documents: versions, entitlement to lodge, listing and download."""

from __future__ import annotations

import base64

import pytest

from repository.documents import DocumentStore
from repository.errors import RepositoryError


def test_lodging_again_adds_a_version_and_keeps_the_old_one(instance):
    store = DocumentStore(instance.database)
    store.lodge("smki-rapp", b"v1", title="SMKI RAPP", media_type="text/plain", lodged_by="smki-pma/aro:a")
    second = store.lodge("smki-rapp", b"v2", title="SMKI RAPP", media_type="text/plain", lodged_by="smki-pma/aro:a")

    assert second.version == 2
    assert [d.version for d in store.latest()] == [2]
    assert store.content("smki-rapp", 1)[1] == b"v1" and store.content("smki-rapp")[1] == b"v2"


@pytest.mark.parametrize(("name", "content", "media_type", "code"), [
    ("Bad Name", b"x", "text/plain", "RP:DOC1"), ("ok", b"", "text/plain", "RP:DOC2"),
    ("ok", b"x", "application/x-msdownload", "RP:DOC4")])
def test_bad_documents_are_refused(instance, name, content, media_type, code):
    with pytest.raises(RepositoryError) as caught:
        DocumentStore(instance.database).lodge(name, content, title="t", media_type=media_type, lodged_by="x")
    assert caught.value.code == code


def test_only_entitled_keys_lodge_and_any_key_lists_and_downloads(client, access):
    pma = access.issue_api_key("smki-pma/aro:smith", may_lodge_documents=True)
    party = access.issue_api_key("party:ACME/aro:jones")
    body = {"name": "smki-cps", "title": "Organisation CPS", "media_type": "application/pdf",
            "file_name": "cps.pdf", "content_base64": base64.b64encode(b"%PDF-1.7 test").decode()}

    refused = client.post("/api/v1/repository/documents", json=body, headers={"X-API-Key": party})
    lodged = client.post("/api/v1/repository/documents", json=body, headers={"X-API-Key": pma})
    listing = client.get("/api/v1/repository/documents", headers={"X-API-Key": party}).get_json()
    download = client.get("/api/v1/repository/documents/smki-cps/content", headers={"X-API-Key": party})

    assert refused.status_code == 403 and refused.get_json()["code"] == "AZ:DOC1"
    assert lodged.status_code == 201 and lodged.get_json()["lodged_by"] == "smki-pma/aro:smith"
    assert [d["name"] for d in listing["documents"]] == ["smki-cps"]
    assert download.data == b"%PDF-1.7 test" and download.mimetype == "application/pdf"
    assert client.get("/api/v1/repository/documents").status_code == 401
