"""Repository fixtures: the store on the test database, sandbox-issued and DCC interop certificates."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from flask.testing import FlaskClient

from repository import service_reads
from repository.access import RepositoryAccess
from repository.request_log import flush_all
from repository.store import CertificateRepository
from smki.core.eui64 import Eui64
from smki.csrgen import device_csr, organisation_csr
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.web import create_app


@pytest.fixture
def repository(instance: Instance) -> CertificateRepository:
    return CertificateRepository(instance.database)


@pytest.fixture
def access(instance: Instance) -> RepositoryAccess:
    return RepositoryAccess(instance.database)


@pytest.fixture
def app(instance: Instance) -> Iterator[Flask]:
    application = create_app(instance)
    application.config["TESTING"] = True
    yield application
    flush_all()  # the request log's waiting rows, while the test's database still exists
    service_reads.forget()  # and the web service's connection to it


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def api_key(access: RepositoryAccess) -> str:
    return access.issue_api_key("party:TEST/aro:tester")


@pytest.fixture
def issue(instance: Instance) -> Callable[..., bytes]:
    """Issue a sandbox certificate and return its DER: organisation (role OU, EUI) or device (Device ID)."""
    service = IssuanceService(instance.ca, instance.database, instance.policies)

    def _issue(kind: str = "organisation", subject: str = "90-B3-D5-1F-30-01-00-00", *, role: str = "02",
               usage: str = "digitalSignature") -> bytes:
        key = ec.generate_private_key(ec.SECP256R1())
        if kind == "device":
            csr = device_csr(key, Eui64.parse(subject), usage)
        else:
            csr = organisation_csr(key, role, Eui64.parse(subject), usage)
        issued = service.issue_from_csr(csr.public_bytes(Encoding.PEM), channel="operator", requested_by="test")
        return issued.der

    return _issue


def pem_files(directory: Path, pattern: str = "*.pem") -> list[bytes]:
    ders = []
    for path in sorted(directory.glob(pattern)):
        for certificate in x509.load_pem_x509_certificates(path.read_bytes()):
            ders.append(certificate.public_bytes(Encoding.DER))
    return ders


@pytest.fixture
def interop_org(interop_dir: Path) -> list[bytes]:
    """The DCC's 41 ZAZ1 Organisation Certificates."""
    return pem_files(interop_dir / "org")


@pytest.fixture
def interop_devices(interop_dir: Path) -> list[bytes]:
    """The 400 RTDS device certificates (issuer E357)."""
    return pem_files(interop_dir / "device", "rtds-*.pem")
