"""Certificates the sandbox itself issues lint clean, and their paths validate through its hierarchy."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from smki.core.eui64 import Eui64
from smki.csrgen import device_csr, organisation_csr
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.lint.linter import lint
from smki.lint.source import read_all

SUPPLIER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
DEVICE = Eui64.parse("00DB123456789001")
CHAINS = {  # profile -> the hierarchy files above it, trust anchor last
    "root_oca": ("root_oca",), "issuing_oca": ("root_oca",), "root_dca": ("root_dca",),
    "issuing_dca": ("root_dca",), "organisation": ("issuing_oca", "root_oca"),
    "device": ("issuing_dca", "root_dca"),
}


@pytest.fixture
def issued(instance: Instance, tmp_path: Path) -> dict[str, Path]:
    """One file per kind: the hierarchy's CA and Recovery certificates, and freshly issued end entities."""
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    csrs = {
        "supplier_ds": organisation_csr(ec.generate_private_key(ec.SECP256R1()), "02", SUPPLIER,
                                        "digitalSignature", trading_name="SANDBOX SUPPLIER"),
        "supplier_ka": organisation_csr(ec.generate_private_key(ec.SECP256R1()), "02", SUPPLIER, "keyAgreement"),
        "device_ds": device_csr(ec.generate_private_key(ec.SECP256R1()), DEVICE, "digitalSignature"),
        "device_ka": device_csr(ec.generate_private_key(ec.SECP256R1()), DEVICE, "keyAgreement"),
    }
    files = {}
    for name, csr in csrs.items():
        certificate = service.issue_from_csr(csr.public_bytes(Encoding.PEM), channel="operator", requested_by="lint")
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(certificate.pem)
    for name in ("root_oca", "issuing_oca", "root_dca", "issuing_dca", "recovery"):
        files[name] = instance.hierarchy.path(name)
    return files


def test_sandbox_certificates_lint_clean_with_their_detected_types(instance, issued):
    reports = lint(read_all(list(issued.values())), instance.policies)
    assert {r.certificate.source: [str(f) for f in r.findings] for r in reports if r.findings} == {}
    assert {Path(r.certificate.source).stem: r.profile for r in reports} == {
        "supplier_ds": "organisation", "supplier_ka": "organisation", "device_ds": "device",
        "device_ka": "device", "root_oca": "root_oca", "issuing_oca": "issuing_oca", "root_dca": "root_dca",
        "issuing_dca": "issuing_dca", "recovery": "organisation"}


def test_sandbox_certificates_validate_through_the_sandbox_hierarchy(instance, issued):
    for path in issued.values():
        [report] = lint(read_all([path]), instance.policies)
        chain = read_all([instance.hierarchy.path(name) for name in CHAINS[report.profile or ""]])
        [validated] = lint(read_all([path]), instance.policies, chain=chain)
        assert validated.findings == [], (path.name, validated.findings)


def test_an_organisation_certificate_does_not_chain_to_the_device_hierarchy(instance, issued):
    chain = read_all([instance.hierarchy.path("issuing_dca"), instance.hierarchy.path("root_dca")])
    [report] = lint(read_all([issued["supplier_ds"]]), instance.policies, chain=chain)
    assert {f.code for f in report.findings} == {"LN:PTH01"}
