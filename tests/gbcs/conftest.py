"""The DCC's RTDS 4.5.0 CS02b vectors and test keys, read in place from /work/shared/interop (never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smki.gbcs import from_hex

DEVICE = "00db1234567890a0"
ACB_KA_KEY = "org-Z1-accessControlBroker-90b3d51f30000002-ka-2015-37cdf206.key.pem"
ACB_KA_CERT = "org-Z1-accessControlBroker-90b3d51f30000002-ka-2015-37cdf206.pem"


@pytest.fixture(scope="session")
def gbcs_dir(interop_dir: Path) -> Path:
    folder = interop_dir / "gbcs"
    if not folder.is_dir():
        pytest.skip(f"the RTDS CS02b vectors are not at {folder}: set SMKI_INTEROP_DIR to the shared/interop folder")
    return folder


@pytest.fixture(scope="session")
def vectors(gbcs_dir: Path) -> dict[str, bytes]:
    """Every vector's octets by file name."""
    found = {path.name: from_hex(path.read_text()) for path in sorted(gbcs_dir.glob("*/*.HEX"))}
    assert len(found) >= 26, f"expected the 26 RTDS CS02b vectors in {gbcs_dir}, found {len(found)}"
    return found


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def ds_certificates(interop_dir: Path, eui_hex: str) -> list[x509.Certificate]:
    """The DCC test Digital Signing certificates for an Entity ID or Device ID (lower-case hex)."""
    paths = [*sorted(interop_dir.glob(f"org/*-{eui_hex}-ds-*.pem")),
             *sorted(interop_dir.glob(f"device/*-{eui_hex}-ds-*.pem"))]
    return [certificate(path) for path in paths]


def device_ka_public_key(interop_dir: Path) -> ec.EllipticCurvePublicKey:
    (path,) = interop_dir.glob(f"device/device-E357-{DEVICE}-ka-*.pem")
    key = certificate(path).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def acb_ka_private_key(interop_dir: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((interop_dir / "test-private-keys" / ACB_KA_KEY).read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def private_key(interop_dir: Path, name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((interop_dir / "test-private-keys" / name).read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key
