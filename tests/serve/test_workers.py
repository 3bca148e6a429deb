"""Issue 12 item 2: ``smki serve`` uses the machine as shipped: as many web workers and batch workers as cores,
and keep-alive connections spread over the workers (they were seen all held by one while the other idled)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from smki.instance import Instance
from smki.web.server import cores
from tests.serve.served import serving, worker_of

CLIENTS = 16  # one keep-alive connection each; the kernel hashes each to a worker
REQUESTS = 10


def test_workers_follow_the_cores_and_keep_alive_clients_spread_over_them(instance: Instance, tmp_path: Path) -> None:
    with serving(instance, tmp_path, "--threads", "2") as served:
        assert f"with {cores()} web workers of 2 threads and {cores()} batch workers" in served.output()

        answered: list[list[int]] = [[] for _ in range(CLIENTS)]
        start = threading.Barrier(CLIENTS)

        def client(index: int) -> None:
            connection = served.connect()
            try:
                start.wait(timeout=60)
                for _ in range(REQUESTS):
                    answered[index].append(worker_of(connection))
            finally:
                connection.close()

        threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert all(len(workers) == REQUESTS for workers in answered), answered
        assert all(len(set(workers)) == 1 for workers in answered)  # each connection kept alive, on one worker
        per_worker = Counter(workers[0] for workers in answered)
        # Spread, not piled on one worker (with a shared socket, whichever worker woke first took them all).
        assert len(per_worker) >= min(cores(), 2), per_worker
