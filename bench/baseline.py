"""The bare baseline every benchmark divides by: the fastest plain ``cryptography`` loop, measured in the
benchmark's own process, in the same run.

Two loops over the same Device CSRs, with the same issuing key and Device Certificate shape (keyUsage,
subjectKeyIdentifier, the hardwareModuleName subjectAltName, certificatePolicies, authorityKeyIdentifier):

- **build + sign**: public keys, keyUsage and subjectAltName read from the CSRs beforehand; per certificate a
  random serial, the GBCS subjectKeyIdentifier, the builder and the signature.
- **parse + verify + build + sign** (the per-CSR floor of any CA): the same, plus loading each CSR's DER
  and checking its signature; the extensions go from the CSR to the certificate as ``cryptography`` parsed them.

Everything that does not change from one certificate to the next (names, validity, policies, AKI, the
builder carrying them) is made once, outside the loop, and nothing is encoded by hand or by a second ASN.1
library: that is what makes it the *fastest* plain loop. The earlier baseline (``bench.common`` until issue
12) encoded each certificate's hardwareModuleName again with asn1crypto (some 25 us, a quarter of the loop)
where the CSR's own subjectAltName serves as it is; it ran at 0.74-0.79 of this loop and so flattered every
ratio by a third. Building the constant parts once and drawing serials with ``secrets.randbits`` add little.

Each figure is the best of several rounds (the machine is shared; the best round is what the hardware
gives), on one core and in one process per core at once (``multiprocessing``, forked, started together).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench.scratch import forked_worker_signals

_SHA256 = hashes.SHA256()
_DEVICE_NOT_AFTER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)  # GBCS: Device Certificates never expire


def gbcs_subject_key_identifier(public_key: ec.EllipticCurvePublicKey) -> x509.SubjectKeyIdentifier:
    """RFC 5280 4.2.1.2 method 2, as GBCS has it (the same value smki.ca.identifiers computes)."""
    low = bytearray(hashlib.sha1(public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)).digest()[-8:])
    low[0] = 0x40 | (low[0] & 0x0F)
    return x509.SubjectKeyIdentifier(bytes(low))


def _serial() -> int:
    # 16 octets, first octet 0x40..0x7F: positive, never shortened, 126 random bits from the OS's CSPRNG
    return secrets.randbits(126) | (1 << 126)


class DeviceLoop:
    """The two plain loops over ``csrs`` (DER Device CSRs), signing with ``signer`` as ``issuer``."""

    def __init__(self, csrs: Sequence[bytes], issuer: x509.Certificate, signer: ec.EllipticCurvePrivateKey,
                 policy_oid: str) -> None:
        self.csrs = list(csrs)
        self.issuer = issuer
        self.signer = signer
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        self._aki = x509.AuthorityKeyIdentifier(issuer_ski, None, None)
        self._policies = x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(policy_oid), None)])
        self._parsed: list[tuple[ec.EllipticCurvePublicKey, x509.KeyUsage, x509.SubjectAlternativeName]] = []
        for der in self.csrs:
            key, usage, san = self._read(x509.load_der_x509_csr(der))
            self._parsed.append((key, usage, san))

    @staticmethod
    def _read(csr: x509.CertificateSigningRequest
              ) -> tuple[ec.EllipticCurvePublicKey, x509.KeyUsage, x509.SubjectAlternativeName]:
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("a Device CSR carries an EC P-256 key")
        extensions = csr.extensions
        return (key, extensions.get_extension_for_class(x509.KeyUsage).value,
                extensions.get_extension_for_class(x509.SubjectAlternativeName).value)

    def _base(self) -> x509.CertificateBuilder:
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return (x509.CertificateBuilder().issuer_name(self.issuer.subject).subject_name(x509.Name([]))
                .not_valid_before(today).not_valid_after(_DEVICE_NOT_AFTER))

    def _sign(self, base: x509.CertificateBuilder, key: ec.EllipticCurvePublicKey, usage: x509.KeyUsage,
              san: x509.SubjectAlternativeName) -> x509.Certificate:
        return (base.public_key(key).serial_number(_serial())
                .add_extension(usage, critical=True)
                .add_extension(gbcs_subject_key_identifier(key), critical=False)
                .add_extension(san, critical=True)
                .add_extension(self._policies, critical=True)
                .add_extension(self._aki, critical=False)
                .sign(self.signer, _SHA256))

    def certificate(self, index: int) -> x509.Certificate:
        """The certificate the loops make from CSR ``index`` (so a test can compare it with the CA's)."""
        return self._sign(self._base(), *self._read(x509.load_der_x509_csr(self.csrs[index])))

    def build_and_sign(self) -> int:
        """Certificates built and signed from CSRs parsed beforehand. Returns how many."""
        base, sign = self._base(), self._sign
        for key, usage, san in self._parsed:
            sign(base, key, usage, san)
        return len(self._parsed)

    def parse_verify_build_and_sign(self) -> int:
        """Each CSR loaded from DER and its signature checked, then built and signed. Returns how many."""
        base, sign, read = self._base(), self._sign, self._read
        for der in self.csrs:
            csr = x509.load_der_x509_csr(der)
            if not csr.is_signature_valid:
                raise ValueError("a benchmark CSR does not verify")
            sign(base, *read(csr))
        return len(self.csrs)


@dataclass(frozen=True)
class BareRates:
    """Items per second of the two plain loops, on one core and with one process per core at once."""

    build_sign: float
    floor: float                # parse + verify + build + sign
    build_sign_all: float
    floor_all: float
    processes: int

    def stricter(self, other: BareRates) -> BareRates:
        """The higher of two measurements of each figure: ratios against it flatter nothing."""
        return BareRates(max(self.build_sign, other.build_sign), max(self.floor, other.floor),
                         max(self.build_sign_all, other.build_sign_all), max(self.floor_all, other.floor_all),
                         self.processes)

    def lines(self, *others: tuple[str, BareRates]) -> list[str]:
        """One line per figure; with ``others`` (the same figures measured at other times, named), those too."""
        def row(label: str, name: str) -> str:
            also = ", ".join(f"{when} {getattr(rates, name):.0f}" for when, rates in others)
            return f"{label:<52}: {getattr(self, name):9.0f} /s{f' ({also})' if others else ''}"

        return [row("bare build+sign, one core", "build_sign"),
                row("bare parse+verify+build+sign, one core", "floor"),
                row(f"bare build+sign, {self.processes} processes at once", "build_sign_all"),
                row(f"bare parse+verify+build+sign, {self.processes} processes at once", "floor_all")]


def best_rate(run: Callable[[], int], rounds: int = 3) -> float:
    """Items per second of ``run``'s fastest call out of ``rounds``."""
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        items = run()
        best = max(best, items / (time.perf_counter() - start))
    return best


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# The forked processes find the loop and the start line here: keys and closures do not pickle, and a
# barrier must be inherited rather than sent.
_FORKED: dict[str, object] = {}


def _timed_in_child(which: str) -> tuple[int, float, float]:
    loop = _FORKED["loop"]
    assert isinstance(loop, DeviceLoop)
    run = loop.build_and_sign if which == "build_sign" else loop.parse_verify_build_and_sign
    _FORKED["barrier"].wait()  # type: ignore[attr-defined]
    start = time.perf_counter()  # CLOCK_MONOTONIC: one clock for every process of the machine
    items = run()
    return items, start, time.perf_counter()


def parallel_rate(loop: DeviceLoop, which: str, processes: int, rounds: int = 3) -> float:
    """Items per second of ``processes`` copies of one loop started together: all their items over the wall
    time from the first start to the last finish. Best of ``rounds``.

    Each copy waits at a barrier for all the others, so no process can take two copies of a round.
    """
    context = multiprocessing.get_context("fork")
    _FORKED.update(loop=loop, barrier=context.Barrier(processes))
    best = 0.0
    try:
        with context.Pool(processes, initializer=forked_worker_signals) as pool:
            for _ in range(rounds):
                results = pool.map(_timed_in_child, [which] * processes, chunksize=1)
                items = sum(r[0] for r in results)
                best = max(best, items / (max(r[2] for r in results) - min(r[1] for r in results)))
    finally:
        _FORKED.clear()
    return best


def measure(loop: DeviceLoop, rounds: int = 3, processes: int | None = None) -> BareRates:
    """The four baseline figures for ``loop``; ``processes`` defaults to the cores this process may use."""
    count = processes or available_cores()
    return BareRates(build_sign=best_rate(loop.build_and_sign, rounds),
                     floor=best_rate(loop.parse_verify_build_and_sign, rounds),
                     build_sign_all=parallel_rate(loop, "build_sign", count, rounds),
                     floor_all=parallel_rate(loop, "floor", count, rounds),
                     processes=count)


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:5.2f}" if baseline > 0 else "  n/a"
