"""A withdrawn ARO's API token is refused on the very next request, by every web worker: tokens are checked
against the database on each request (no per-process cache that one worker's withdrawal could leave stale in
another)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from smki.instance import Instance
from smki.ra.identity import revoke_credentials
from smki.ra.service import RegistrationAuthority
from tests.ra.conftest import Population, population, ra  # noqa: F401  (fixtures)
from tests.serve.served import serving, worker_of

CONNECTIONS = 16  # keep-alive connections; the kernel spreads them over the workers


def decisions(connection: http.client.HTTPConnection, token: str, party: int) -> tuple[int, dict]:
    connection.request("GET", f"/api/v1/ra/parties/{party}/decisions", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def test_a_withdrawn_aros_token_is_refused_at_once_by_every_worker(
        instance: Instance, tmp_path: Path, ra: RegistrationAuthority, population: Population) -> None:  # noqa: F811
    token = population.aro_a.token
    assert token is not None
    with serving(instance, tmp_path, "--workers", "2", "--threads", "2", "--no-worker") as served:
        connections = [served.connect() for _ in range(CONNECTIONS)]
        try:
            by_worker = {worker_of(connection): connection for connection in connections}
            assert len(by_worker) == 2, "the keep-alive connections should reach both workers"
            for connection in by_worker.values():  # each worker has authenticated the token
                assert decisions(connection, token, population.supplier_a)[0] == 200

            with ra.database.session() as session:
                revoke_credentials(session, population.aro_a.person_id)

            for connection in by_worker.values():  # the very next request, on the same connections
                status, problem = decisions(connection, token, population.supplier_a)
                assert (status, problem.get("code")) == (401, "AU:TOK03")
        finally:
            for connection in connections:
                connection.close()
