"""What recording a SREPT run adds to a batched Device CSR submission: the same batch size through the batched
Device CSR web service, end to end, with no run open (the baseline) and with the submitting Party's SREPT run
open (every request and answer captured, matched and written), in the same process, in the same run.

    python -m bench.srept_overhead [--count 2000] [--rounds 2] [--database-url URL]

Measures from the POST of SubmitCSRBatch to the last result read (poll until COMPLETED, then one
CSRBatchResult with every certificate), the queue drained in this process (no worker processes: less noise
between the two), alternating without and with (ABBA: the ledger grows), the best round of each. Prints
the ratio with/without.
Target (issue 11): at most 1.10 at 50,000 CSRs (``--count 50000``; the default is small for a quick run).
"""

from __future__ import annotations

import argparse
import base64
import logging
import time

from bench.common import device_csrs, temporary_instance
from bench.scratch import scratch
from smki.devicecsr.runtime import DeviceCsrRuntime
from smki.devicecsr.xml import NAMESPACE
from smki.instance import Instance
from smki.srept.recording import flush_all
from smki.web import create_app

TARGET = 1.10


def batch_payload(csrs: list[bytes], reference: str) -> bytes:
    body = "".join(f'<DeviceCSR ID="csr-{n}">{base64.b64encode(der).decode()}</DeviceCSR>'
                   for n, der in enumerate(csrs))
    return (f'<SubmitCSRBatch xmlns="{NAMESPACE}" ID="{reference}"><Version>1.0</Version>{body}'
            "</SubmitCSRBatch>").encode()


def _party(instance: Instance) -> tuple[int, str, str]:
    """A supplier authorised for Device Certificates (rehearsing again), its Device-scoped ARO, an RA operator."""
    from smki.ra.population import PopulationBuilder
    from smki.ra.service import RegistrationAuthority

    build = PopulationBuilder(RegistrationAuthority(instance))
    party = build.party("Overhead Supply Ltd", "large_supplier", [("IS", "90B3D51F30E10001")],
                        authorised=("device",))
    aro = build.member(party, "Bench ARO", "aro", scopes=("device",)).token
    operator = build.member(None, "Bench Operator", "ra_operator").token
    assert aro and operator
    return party, aro, operator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (default: SQLite)")
    args = parser.parse_args()
    logging.getLogger("smki.devicecsr").setLevel(logging.ERROR)

    instance = temporary_instance(args.database_url)
    party, aro, operator = _party(instance)
    print(f"making {args.count * (2 * args.rounds)} Device CSRs ...", flush=True)
    csrs = device_csrs(args.count * 2 * args.rounds)
    queue = scratch().directory("smki-bench-queue-") / "queue.db"
    runtime = DeviceCsrRuntime.build(instance, queue=f"sqlite:///{queue}")
    app = create_app(instance)
    app.config["DEVICECSR_RUNTIME"] = runtime
    client = app.test_client()
    headers = {"Authorization": f"Bearer {aro}", "Content-Type": "application/xml"}
    ns = f"{{{NAMESPACE}}}"
    run_id: int | None = None

    def one_batch(n: int) -> float:
        from lxml import etree

        payload = batch_payload(csrs[n * args.count:(n + 1) * args.count], f"bench-{n}")
        start = time.perf_counter()
        submitted = etree.fromstring(client.post("/1.0/PortalCSRBatch/SubmitCSRBatch", data=payload,
                                                 headers=headers).data)
        batch_id = submitted.findtext(f"{ns}BatchId")
        assert batch_id, etree.tostring(submitted)
        while True:
            runtime.jobs.run_pending()
            response = client.get(f"/1.0/PortalCSRBatch/CSRBatchResult?BatchId={batch_id}", headers=headers)
            result = etree.fromstring(response.data)
            if result.findtext(f"{ns}BatchStatus") == "COMPLETED":
                break
        issued = len(result.findall(f"{ns}DeviceCertificate/{ns}Certificate"))
        flush_all()  # the recording's writes count against the run that made them
        elapsed = time.perf_counter() - start
        assert issued == args.count, f"{issued} certificates for {args.count} CSRs"
        return elapsed

    without: list[float] = []
    with_run: list[float] = []

    def recorded_batch(n: int) -> float:
        nonlocal run_id
        operator_headers = {"Authorization": f"Bearer {operator}"}
        opened = client.post("/api/v1/srept/runs", json={"organisation_id": party}, headers=operator_headers)
        assert opened.status_code == 201, opened.data
        run_id = opened.get_json()["id"]
        elapsed = one_batch(n)
        closed = client.post(f"/api/v1/srept/runs/{run_id}/closure", headers=operator_headers)
        assert closed.status_code == 200, closed.data  # the Party keeps the Device authorisation it had
        return elapsed

    # ABBA: the ledger grows with every batch, so each side goes first as often as second
    for round_number in range(args.rounds):
        first, second = 2 * round_number, 2 * round_number + 1
        if round_number % 2 == 0:
            without.append(one_batch(first))
            with_run.append(recorded_batch(second))
        else:
            with_run.append(recorded_batch(first))
            without.append(one_batch(second))
    best_without, best_with = min(without), min(with_run)
    # With an even number of rounds the order is ABBA...: each side holds as many early as late positions, so the
    # ratio of the sums cancels the ledger's linear growth, which the ratio of the bests does not (the very first
    # batch, on an empty ledger, is always a baseline one).
    ratio = sum(with_run) / sum(without) if args.rounds % 2 == 0 else best_with / best_without
    database = instance.database.engine.dialect.name
    print(f"{args.count} CSRs per batch, {database}, best of {args.rounds} rounds each")
    print(f"no SREPT run open (baseline)   : {best_without:8.2f} s  ({args.count / best_without:7.0f} CSRs/s)")
    print(f"the Party's SREPT run open     : {best_with:8.2f} s  ({args.count / best_with:7.0f} CSRs/s)")
    print(f"each batch (s), in run order   : without {', '.join(f'{t:.2f}' for t in without)}; "
          f"with {', '.join(f'{t:.2f}' for t in with_run)}")
    basis = "sums over ABBA rounds" if args.rounds % 2 == 0 else "bests"
    print(f"ratio with / without           : {ratio:8.3f}  ({basis}; target <= {TARGET:.2f}: "
          f"{'met' if ratio <= TARGET else 'NOT met'})")
    if run_id is not None:
        from sqlalchemy import func, select

        from smki.srept.models import SreptInteraction, SreptMatch

        with instance.database.session() as session:
            recorded = session.execute(select(func.count()).select_from(SreptInteraction)
                                       .where(SreptInteraction.run_id == run_id)).scalar_one()
            passed = sorted(set(session.execute(select(SreptMatch.scenario_id).where(
                SreptMatch.run_id == run_id, SreptMatch.passed.is_(True))).scalars()))
        print(f"SREPT run {run_id} recorded {recorded} interactions; scenarios passed: {', '.join(passed)}")


if __name__ == "__main__":
    main()
