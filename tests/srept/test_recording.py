"""Recording: credentials are attributed but never stored, secrets in forms and queries are withheld, a
Repository API key and a Repository portal session name the Party, streamed answers are kept in part, and two
openings of a run for one Party at once leave exactly one run open."""

from __future__ import annotations

import threading

from sqlalchemy import select

from smki.ra.forms import repository_credentials, repository_within
from smki.ra.lodging import repository_holder
from smki.srept.models import SreptInteraction, SreptRun
from smki.srept.recording import flush_all
from tests.portal import form_token
from tests.ra.conftest import Population, auth
from tests.srept.conftest import Newcomer, open_run, states


def _rows(ra, run_id: int) -> list[SreptInteraction]:  # type: ignore[no-untyped-def]
    flush_all()
    with ra.database.session() as session:
        rows = list(session.execute(select(SreptInteraction).where(SreptInteraction.run_id == run_id)
                                    .order_by(SreptInteraction.id)).scalars())
        for row in rows:
            _ = row.request_body, row.response_body
        return rows


def test_secrets_are_withheld_and_credentials_never_stored(client, ra, population: Population,  # type: ignore[no-untyped-def]
                                                           newcomer: Newcomer) -> None:
    run = open_run(client, population.operator, newcomer.party)
    token = newcomer.aro.token
    assert token
    signed_in = client.post("/portal/login", data={"token": token, "csrf_token": form_token(client, "/portal/login")})
    assert signed_in.status_code == 302
    client.get("/api/v1/ra/certificates/ABCDEF", headers=auth(newcomer.aro))
    rows = _rows(ra, run["id"])
    assert [(r.method, r.path, r.credential_kind) for r in rows] == [
        ("POST", "/portal/login", "portal_session"), ("GET", "/api/v1/ra/certificates/ABCDEF", "api_token")]
    stored = b"".join(r.request_body + r.response_body for r in rows) + repr([r.query for r in rows]).encode()
    assert token.encode() not in stored
    assert b"(withheld)" in rows[0].request_body
    assert rows[0].person_id == rows[1].person_id == newcomer.aro.person_id
    assert states(client, newcomer.sro, run["id"])["PTL-01"] == "passed"


def test_repository_key_and_portal_session_name_the_party(client, ra, population: Population,  # type: ignore[no-untyped-def]
                                                          newcomer: Newcomer) -> None:
    run = open_run(client, population.operator, newcomer.party)
    holder = repository_holder("Newcomer Energy Ltd", newcomer.aro.person_id)
    from smki.ra import audit

    made = audit.audited(ra.database, lambda session: repository_credentials(
        repository_within(session), holder, "nina@newcomer.example"))
    key, password = made["repository_api_key"], made["repository_password"]
    client.get(f"/api/v1/repository/certificates?apikey={key}")
    client.post("/repository/login", data={"username": "nina@newcomer.example", "password": "wrong password!",
                                           "csrf_token": form_token(client, "/repository/login")})
    client.post("/repository/login", data={"username": "nina@newcomer.example", "password": password,
                                           "csrf_token": form_token(client, "/repository/login")})
    client.get("/repository/")
    rows = _rows(ra, run["id"])
    assert [(r.path, r.credential_kind, r.http_status) for r in rows] == [
        ("/api/v1/repository/certificates", "api_key", 200), ("/repository/login", "repository_password", 401),
        ("/repository/login", "repository_password", 302), ("/repository/", "repository_session", 200)]
    assert rows[0].query == {"apikey": "(withheld)"}
    stored = b"".join(r.request_body for r in rows)
    assert password.encode() not in stored and b"wrong password!" not in stored
    marked = states(client, newcomer.sro, run["id"])
    assert marked["RPA-01"] == marked["RPA-02"] == marked["RPA-04"] == "passed"


def test_two_openings_at_once_leave_one_run(client, ra, population: Population, newcomer: Newcomer, app) -> None:  # type: ignore[no-untyped-def]
    answers: list[int] = []

    def open_one() -> None:
        with app.test_client() as own:
            answers.append(own.post("/api/v1/srept/runs", json={"organisation_id": newcomer.party},
                                    headers=auth(population.operator)).status_code)
    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201, 409, 409, 409]
    with ra.database.session() as session:
        assert len(session.execute(select(SreptRun).where(SreptRun.status == "open")).scalars().all()) == 1


def test_an_iki_client_certificate_names_the_party(client, ra, population: Population,  # type: ignore[no-untyped-def]
                                                   newcomer: Newcomer) -> None:
    from cryptography.hazmat.primitives import serialization

    from smki.ra import audit
    from smki.ra.iki import IkiAuthority

    run = open_run(client, population.operator, newcomer.party)
    certificate, _key = audit.audited(ra.database, lambda session: IkiAuthority(ra.instance, ra.settings)
                                      .issue_person_certificate(session, person_id=newcomer.aro.person_id,
                                                                name="Nina Newcomer-ARO", organisation=None))
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    # as werkzeug's TLS server hands the verified client certificate to the application
    answer = client.get("/api/v1/ra/certificates/ABCDEF", environ_base={"SSL_CLIENT_CERT": pem})
    assert answer.status_code == 404
    rows = _rows(ra, run["id"])
    assert [(r.credential_kind, r.person_id) for r in rows] == [("client_certificate", newcomer.aro.person_id)]
