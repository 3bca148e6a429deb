"""Fixtures for the Device CSR services: CSRs, a gate with known callers, a runtime whose queue the
test drains in-process, and the Flask app wired to it."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from smki.core.eui64 import Eui64
from smki.csrgen import device_csr
from smki.devicecsr import xml
from smki.devicecsr.gate import LedgerGate, Subscriber
from smki.devicecsr.runtime import DeviceCsrRuntime
from smki.instance import Instance
from smki.issuance import record_issuance
from tests.ra.conftest import Population, population, ra  # noqa: F401 - the RA's fixtures, for this folder

SUPPLIER = Subscriber("P-IS", frozenset({"IS"}), True, "supplier-system")
OTHER_SUPPLIER = Subscriber("P-GS", frozenset({"GS"}), True, "other-system")
NETWORK = Subscriber("P-ED", frozenset({"ED"}), True, "network-system")
OUTSIDER = Subscriber("P-OU", frozenset({"OU"}), False, "outsider-system")
CALLERS = {"supplier": SUPPLIER, "other": OTHER_SUPPLIER, "network": NETWORK, "outsider": OUTSIDER}
OWNED_DEVICE = "00DB0000000000FF"   # installed; P-GS is its responsible supplier


def csr_b64(device: int | str, usage: str = "digitalSignature") -> str:
    device_id = Eui64(bytes.fromhex(device) if isinstance(device, str) else device.to_bytes(8, "big"))
    key = ec.generate_private_key(ec.SECP256R1())
    return base64.b64encode(device_csr(key, device_id, usage).public_bytes(Encoding.DER)).decode()


def bad_signature_b64(device: int) -> str:
    der = bytearray(base64.b64decode(csr_b64(device)))
    der[-5] ^= 0x01  # inside the signature's integers
    return base64.b64encode(bytes(der)).decode()


def batch_xml(entries: list[tuple[str, str]], reference: str = "batch-1", namespace: str = xml.NAMESPACE) -> bytes:
    body = "".join(f'<DeviceCSR ID="{ident}">{csr}</DeviceCSR>' for ident, csr in entries)
    return (f'<?xml version="1.0"?><SubmitCSRBatch xmlns="{namespace}" ID="{reference}">'
            f"<Version>1.0</Version>{body}</SubmitCSRBatch>").encode()


def adhoc_xml(csr: str, ident: str = "req-1") -> bytes:
    return (f'<DeviceCertificateSigningRequest xmlns="{xml.NAMESPACE}" ID="{ident}"><Version>1.0</Version>'
            f"<CertificateSigningRequest>{csr}</CertificateSigningRequest></DeviceCertificateSigningRequest>").encode()


def seed_certificates(instance: Instance, device_hex: str, count: int) -> None:
    """Ledger rows standing for ``count`` earlier Device Certificates of a device."""
    now = dt.datetime.now(dt.UTC)
    rows = [{"serial": secrets.token_hex(16).upper(), "profile": "device", "issuer_name": "S357",
             "subject_id": device_hex, "key_usage": "digitalSignature", "role_code": None, "channel": "seed",
             "requested_by": "test", "csr_sha256": None, "tbs_sha256": "0" * 64, "certificate_der": b"\x30\x00",
             "issued_at": now} for _ in range(count)]
    with instance.database.session() as session:
        record_issuance(session, rows)


def parse_answer(body: bytes) -> etree._Element:
    """Parse an answer and check it against the project's XSD, as a Party's client would."""
    root = etree.fromstring(body)
    xml.schema().assertValid(root)
    return root


def text(root: etree._Element, path: str) -> str | None:
    return root.findtext(path.replace("{}", "{" + xml.NAMESPACE + "}"))


@pytest.fixture
def gate(instance: Instance) -> LedgerGate:
    return LedgerGate(instance.database, CALLERS, {OWNED_DEVICE: "P-GS"})


@pytest.fixture
def make_runtime(instance: Instance, gate: LedgerGate, tmp_path: Path) -> Callable[..., DeviceCsrRuntime]:
    def build(**policy_changes: object) -> DeviceCsrRuntime:
        base = DeviceCsrRuntime.build(instance, gate=gate, queue=f"sqlite:///{tmp_path / 'queue.db'}")
        if not policy_changes:
            return base
        policy = dataclasses.replace(base.policy, **policy_changes)  # type: ignore[arg-type]
        return DeviceCsrRuntime.build(instance, gate=gate, queue=f"sqlite:///{tmp_path / 'queue.db'}", policy=policy)
    return build


@pytest.fixture
def runtime(make_runtime: Callable[..., DeviceCsrRuntime]) -> DeviceCsrRuntime:
    return make_runtime()


@pytest.fixture
def app_for(instance: Instance):  # type: ignore[no-untyped-def]
    from smki.web import create_app

    def build(rt: DeviceCsrRuntime):  # type: ignore[no-untyped-def]
        app = create_app(instance)
        app.config["DEVICECSR_RUNTIME"] = rt
        app.config["TESTING"] = True
        return app
    return build


@pytest.fixture
def client(app_for, runtime: DeviceCsrRuntime):  # type: ignore[no-untyped-def]
    return app_for(runtime).test_client()


def headers(caller: str = "supplier") -> dict[str, str]:
    return {"X-SMKI-Client": caller, "Content-Type": "application/xml"}
