"""A recovery drill end to end (issue 14): the method 3 scenario (``org_key_method3``: the DCC places a
Subscriber's new certificates on its devices with the Recovery key) run for real over an estate, against the
estate command floor of issue 13 measured in the same run (two bare ``cryptography`` ECDSA P-256 signs and two
verifies per device: the command's and the response's).

    python -m bench.drill [--quick] [--devices 20000] [--scenario org_key_method3] [--database-url URL]

Printed: the time the drill's world took to build (Parties, custody, the estate: estate creation, not the
drill's), the drill's own time from its first step to its last, the part of it its device commands took, and
both against the floor for the same devices on the machine's cores. Target (issue 14): the drill adds no more
than 25% to the estate command floor, i.e. drill time / floor time <= 1.25. ``--quick``: 200 devices. The
host instance, the drill's world and any PostgreSQL database are removed however the run ends.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from typing import Any

from bench.baseline import available_cores
from bench.common import temporary_instance
from bench.estate_recovery import SignVerifyFloor, parallel_floor
from bench.scratch import scratch
from smki.drills.record import record
from smki.drills.runner import Drills

TARGET = 1.25
FLOOR_SAMPLE = 2_000   # devices in each floor round: enough for a steady rate, quick at any estate size


def _seconds(steps: list[dict[str, Any]], *, actions: tuple[str, ...] | None = None) -> float:
    total = 0.0
    for step in steps:
        if step.get("started_at") and step.get("ended_at") and (actions is None or step.get("action") in actions):
            total += (dt.datetime.fromisoformat(step["ended_at"]) -
                      dt.datetime.fromisoformat(step["started_at"])).total_seconds()
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--scenario", default="org_key_method3")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--quick", action="store_true", help="200 devices")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args(argv)
    devices = 200 if args.quick else args.devices
    cores = available_cores()

    floor_rate = parallel_floor(SignVerifyFloor(FLOOR_SAMPLE), cores)
    host = temporary_instance(args.database_url)
    drills = Drills(host)
    run_id = drills.create(args.scenario, devices=devices, seed=args.seed, faults_text="",
                           started_by="bench.drill")
    scratch().push(f"drill world {run_id}", lambda: drills.discard_world(run_id))
    start = time.perf_counter()
    status = drills.execute(run_id)
    elapsed = time.perf_counter() - start
    if status != "completed":
        print(f"the drill ended {status}: {drills.progress(run_id).error}", file=sys.stderr)
        return 1
    data = record(host, run_id)
    steps = drills.steps(run_id)   # the host's rows: they name each step's action
    drill_seconds = _seconds(steps)
    command_seconds = _seconds(steps, actions=("send_commands",))
    world_seconds = max(0.0, elapsed - drill_seconds)
    affected = data["devices"]["total"] - data["devices"].get("not_affected", 0)
    floor_seconds = affected / floor_rate
    ratio = drill_seconds / floor_seconds if floor_seconds else float("inf")
    print(f"drill {args.scenario}: {devices:,} devices ({affected:,} affected), {cores} cores, "
          f"{'SQLite' if not args.database_url else 'PostgreSQL'}")
    print(f"  estate command floor (2 signs + 2 verifies per device, {cores} processes): {floor_rate:,.0f} devices/s"
          f" -> {floor_seconds:,.1f} s for the affected devices")
    print(f"  world built (Parties, custody, estate; not the drill's): {world_seconds:,.1f} s")
    print(f"  drill, first step to last: {drill_seconds:,.1f} s, of which device commands {command_seconds:,.1f} s")
    print(f"  drill / floor: {ratio:.2f} (target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'}); "
          f"device commands / floor: {command_seconds / floor_seconds if floor_seconds else 0:.2f}")
    print(f"  recovered {data['devices']['recovered']:,}, residual {len(data['devices']['residual']):,}, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
