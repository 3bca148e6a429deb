"""Helpers shared by the benchmarks: a throwaway instance, pre-made CSRs, and the bare baseline's loop."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from bench.baseline import DeviceLoop, available_cores
from bench.scratch import forked_worker_signals, scratch
from smki.bootstrap import initialise
from smki.core.config import DEFAULT_POLICIES_DIR, Settings
from smki.core.eui64 import Eui64
from smki.csrgen import device_csr
from smki.instance import Instance


def temporary_instance(database_url: str | None = None) -> Instance:
    """A throwaway, initialised instance, removed when the benchmark exits however it exits.

    On PostgreSQL (``database_url`` naming the server) it lives in a fresh database of its own, dropped at the
    end, so a benchmark reruns against the same server; otherwise in a SQLite file in its folder.
    """
    work = scratch().directory()
    directory = work / "instance"
    if database_url and not database_url.startswith("sqlite"):
        url = scratch().database(database_url)
    else:
        url = f"sqlite:///{work / 'smki.db'}"
    instance = Instance(Settings(directory, url, DEFAULT_POLICIES_DIR, None))
    initialise(instance)
    return instance


def device_csrs(count: int, first_device: int = 0x00DB123400000000, processes: int | None = None) -> list[bytes]:
    """DER Device CSRs, one key each, alternating digitalSignature and keyAgreement (two per Device ID).

    Made in one process per core when there are many: 375,000 of them take a minute of CPU.
    """
    if count < 5000:
        return _device_csr_range((first_device, 0, count))
    workers = processes or available_cores()
    step = -(-count // (workers * 4))
    ranges = [(first_device, start, min(count, start + step)) for start in range(0, count, step)]
    with multiprocessing.get_context("fork").Pool(workers, initializer=forked_worker_signals) as pool:
        return [der for part in pool.map(_device_csr_range, ranges) for der in part]


def _device_csr_range(task: tuple[int, int, int]) -> list[bytes]:
    first_device, start, stop = task
    out = []
    for n in range(start, stop):
        key = ec.generate_private_key(ec.SECP256R1())
        usage = "digitalSignature" if n % 2 == 0 else "keyAgreement"
        device = Eui64((first_device + n // 2).to_bytes(8, "big"))
        out.append(device_csr(key, device, usage).public_bytes(Encoding.DER))
    return out


def bare_device_build_and_sign(csrs: list[bytes], issuer: x509.Certificate,
                               signer: ec.EllipticCurvePrivateKey, policy: str) -> Callable[[], int]:
    """The baseline build + sign loop of :mod:`bench.baseline` over ``csrs`` (returns how many it signed)."""
    return DeviceLoop(csrs, issuer, signer, policy).build_and_sign


def best_of(run: Callable[[], int], rounds: int = 3) -> tuple[float, float]:
    """(items per second, seconds) of the fastest of ``rounds`` calls of ``run``: a baseline's best is what
    the hardware gives, where a single call may have shared the cores with something else."""
    return max((rate(run) for _ in range(rounds)), key=lambda measured: measured[0])


def rate(run: Callable[[], int]) -> tuple[float, float]:
    """(items per second, seconds) for one call of ``run``."""
    start = time.perf_counter()
    items = run()
    elapsed = time.perf_counter() - start
    return items / elapsed, elapsed
