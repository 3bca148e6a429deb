"""Concurrent HTTP clients for the served benchmarks: aiohttp, one keep-alive connection per client.

Each client is a coroutine with a session of its own holding at most one connection, as each of a Party's
adaptors would; all run on one event loop, the cheapest way Python has to keep many requests in flight. The
requests are shared out as the clients free up; a phase stops when they are used up or its time is over.

What it costs the client is measured (this process's CPU time per request) beside what it costs the server
(the CPU time of the server's process group, from ``/proc``), so a reader can see the client is not the
bottleneck: ``client_ceiling`` is the rate this client could drive on one core if the server cost nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from bench.scratch import group_processes


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Load:
    """What one phase of concurrent requests gave."""

    label: str
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)   # seconds, one per answered request
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)   # problem codes (or exception names) of failures
    unanswered: int = 0                                     # connection errors and timeouts
    client_cpu: float = 0.0                                 # seconds of this process's CPU
    server_cpu: float | None = None                         # seconds of the server group's CPU

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency in milliseconds at quantile ``q`` (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))] * 1000

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300) + self.unanswered

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def client_ceiling(self) -> float:
        """Requests per second this client could issue on one core if the server answered at no cost."""
        return self.count / self.client_cpu if self.client_cpu else float("inf")

    def summary(self) -> str:
        per_request = (f"; CPU per request: client {self.client_cpu / max(self.count, 1) * 1e3:.2f} ms"
                       + (f", smki serve (all its processes) {self.server_cpu / max(self.count, 1) * 1e3:.2f} ms"
                          if self.server_cpu is not None else ""))
        return (f"{self.label}, {self.clients} clients: {self.rate:8.0f} req/s ({self.count} in {self.seconds:.1f} s), "
                f"p50 {self.percentile(0.5):.1f} ms, p99 {self.percentile(0.99):.1f} ms, "
                f"non-2xx {self.non_2xx}{per_request}")

    def errors_line(self) -> str:
        """The failures, loud: a CA that fails a request under load is not usable."""
        if not self.non_2xx:
            return ""
        statuses = ", ".join(f"HTTP {s} x{n}" for s, n in sorted(self.statuses.items()) if not 200 <= s < 300)
        if self.unanswered:
            statuses += f"{', ' if statuses else ''}no answer x{self.unanswered}"
        codes = ", ".join(f"{c} x{n}" for c, n in self.codes.most_common(5))
        marker = "!!! 5xx: " + str(self.server_errors) if self.server_errors else "non-2xx"
        return f"    {marker} ({statuses}) {codes}"


def run_load(base_url: str, label: str, clients: int, requests: Sequence[Request], max_seconds: float,
             server_group: int | None = None) -> Load:
    """Send ``requests`` with ``clients`` concurrent clients; stop early after ``max_seconds``."""
    return asyncio.run(_run(base_url, label, clients, requests, max_seconds, server_group))


async def _run(base_url: str, label: str, clients: int, requests: Sequence[Request], max_seconds: float,
               server_group: int | None) -> Load:
    load = Load(label, clients)
    next_index = 0
    deadline = 0.0

    async def client() -> None:
        nonlocal next_index
        connector = aiohttp.TCPConnector(limit=1)  # one keep-alive connection: one adaptor
        timeout = aiohttp.ClientTimeout(total=max(30.0, max_seconds))
        async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout,
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            while next_index < len(requests) and time.perf_counter() < deadline:
                request = requests[next_index]
                next_index += 1
                started = time.perf_counter()
                try:
                    async with session.request(request.method, request.path, data=request.body,
                                               headers=request.headers) as response:
                        body = await response.read()
                        load.latencies.append(time.perf_counter() - started)
                        load.statuses[response.status] += 1
                        if not 200 <= response.status < 300:
                            load.codes[_problem_code(response.content_type, body, response.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as error:
                    load.unanswered += 1
                    load.codes[type(error).__name__] += 1

    cpu_before, server_before = time.process_time(), group_cpu_seconds(server_group)
    start = time.perf_counter()
    deadline = start + max_seconds
    await asyncio.gather(*(client() for _ in range(clients)))
    load.seconds = time.perf_counter() - start
    load.client_cpu = time.process_time() - cpu_before
    server_after = group_cpu_seconds(server_group)
    if server_before is not None and server_after is not None:
        load.server_cpu = server_after - server_before
    return load


def _problem_code(content_type: str, body: bytes, status: int) -> str:
    if content_type.endswith("json"):
        try:
            code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            code = None
        if isinstance(code, str):
            return code
    return f"HTTP {status}"


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_seconds(group: int | None) -> float | None:
    """User + system CPU seconds of the live processes of process group ``group`` (Linux ``/proc``)."""
    if group is None or not os.path.isdir("/proc"):
        return None
    # utime and stime are fields 14 and 15 of the stat file: 11 and 12 after the command name
    return sum(int(fields[11]) + int(fields[12]) for _pid, _state, fields in group_processes(group)) / _TICKS
