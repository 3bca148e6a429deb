"""Helpers shared by the benchmarks: a throwaway instance, pre-made CSRs, and the bare baseline."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from smki.bootstrap import initialise
from smki.ca.builder import key_usage
from smki.ca.identifiers import new_serial, subject_key_identifier
from smki.core.asn1 import HARDWARE_MODULE_NAME_OID, hardware_module_name
from smki.core.config import DEFAULT_POLICIES_DIR, Settings
from smki.core.eui64 import Eui64
from smki.csrgen import TEST_HW_TYPE, device_csr
from smki.instance import Instance


def temporary_instance(database_url: str | None = None) -> Instance:
    directory = Path(tempfile.mkdtemp(prefix="smki-bench-")) / "instance"
    url = database_url or f"sqlite:///{directory.parent / 'smki.core.db'}"
    instance = Instance(Settings(directory, url, DEFAULT_POLICIES_DIR, None))
    initialise(instance)
    return instance


def device_csrs(count: int, first_device: int = 0x00DB123400000000) -> list[bytes]:
    """DER Device CSRs, one key each, alternating digitalSignature and keyAgreement."""
    out = []
    for n in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        usage = "digitalSignature" if n % 2 == 0 else "keyAgreement"
        device = Eui64((first_device + n // 2).to_bytes(8, "big"))
        out.append(device_csr(key, device, usage).public_bytes(Encoding.DER))
    return out


def bare_device_build_and_sign(csrs: list[bytes], issuer: x509.Certificate,
                               signer: ec.EllipticCurvePrivateKey, policy: str) -> Callable[[], int]:
    """The baseline: cryptography alone builds and signs the same Device Certificate shape.

    Public keys are loaded up front, so the baseline is pure build-and-sign; nothing is validated
    or stored.
    """
    keys = [x509.load_der_x509_csr(der).public_key() for der in csrs]
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    policies = x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(policy), None)])
    aki = x509.AuthorityKeyIdentifier(issuer_ski, None, None)
    ku = key_usage(["digitalSignature"])
    not_after = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)

    def run() -> int:
        now = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for n, public_key in enumerate(keys):
            san = x509.SubjectAlternativeName([x509.OtherName(
                x509.ObjectIdentifier(HARDWARE_MODULE_NAME_OID),
                hardware_module_name(TEST_HW_TYPE, n.to_bytes(8, "big")))])
            (x509.CertificateBuilder().issuer_name(issuer.subject).subject_name(x509.Name([]))
             .public_key(public_key).serial_number(new_serial()).not_valid_before(now).not_valid_after(not_after)
             .add_extension(ku, critical=True)
             .add_extension(x509.SubjectKeyIdentifier(subject_key_identifier(public_key)), critical=False)
             .add_extension(san, critical=True).add_extension(policies, critical=True)
             .add_extension(aki, critical=False)
             .sign(signer, hashes.SHA256()))
        return len(keys)

    return run


def rate(run: Callable[[], int]) -> tuple[float, float]:
    """(items per second, seconds) for one call of ``run``."""
    start = time.perf_counter()
    items = run()
    elapsed = time.perf_counter() - start
    return items / elapsed, elapsed
