"""``smki worker``: one Huey consumer processing Device CSR batches.

Start as many as you like, on as many machines as share the database and the queue
(``SMKI_QUEUE_URL``); the database decides which worker does which chunk.
"""

from __future__ import annotations

import logging

import click

from smki.instance import Instance


@click.command("worker")
@click.option("--workers", default=1, show_default=True, type=int, help="Concurrent workers in this consumer.")
@click.option("--worker-type", type=click.Choice(["process", "thread"]), default="process", show_default=True,
              help="Processes use every core (signing is CPU-bound); threads share one.")
@click.option("--queue", "queue", default=None, help="Queue URL (default: SMKI_QUEUE_URL, or derived from the "
              "database: a SQLite file beside it, or the same PostgreSQL database).")
def worker(workers: int, worker_type: str, queue: str | None) -> None:
    """Process queued Device CSR batches until stopped (Ctrl-C or SIGTERM finish the current job)."""
    from smki.devicecsr.jobs import queue_url
    from smki.devicecsr.runtime import DeviceCsrRuntime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    instance = Instance.from_env()
    runtime = DeviceCsrRuntime.build(instance, queue=queue)
    click.echo(f"smki worker: {workers} {worker_type} worker(s) on {queue or queue_url(instance)}", err=True)
    # An idle worker looks at the queue every 0.1 s at most: a new batch starts at once, and a query of
    # an empty queue costs next to nothing.
    consumer = runtime.jobs.huey.create_consumer(workers=workers, worker_type=worker_type, periodic=True,
                                                 initial_delay=0.05, backoff=1.5, max_delay=0.1,
                                                 check_worker_health=True)
    consumer.run()
