"""An HSM-style key store slots in without changing the CA.

The store below never hands out a private key: its signer is a pure-Python ``EllipticCurvePrivateKey``
whose ``sign`` forwards to a key held elsewhere (as an HSM proxy forwards to the module) and counts
the calls. If the CA depended on anything but ``sign`` and ``public_key``, this would fail.
"""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from smki.bootstrap import initialise
from smki.ca.authority import RevokedEntry
from smki.instance import Instance
from smki.issuance import IssuanceService
from tests.ca import craft


class Module:
    """Stands in for the hardware: keys never leave it; it only signs."""

    def __init__(self) -> None:
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._secrets: dict[str, bytes] = {}
        self.signatures: Counter[str] = Counter()

    def generate(self, label: str) -> ec.EllipticCurvePublicKey:
        self._keys[label] = ec.generate_private_key(ec.SECP256R1())
        return self._keys[label].public_key()

    def sign(self, label: str, data: bytes, algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        self.signatures[label] += 1
        return self._keys[label].sign(data, algorithm)

    def public_key(self, label: str) -> ec.EllipticCurvePublicKey:
        return self._keys[label].public_key()


class HsmKey(ec.EllipticCurvePrivateKey):
    """A proxy: sign() asks the module; everything that would export the key refuses."""

    def __init__(self, module: Module, label: str) -> None:
        self._module, self._label = module, label

    def sign(self, data, signature_algorithm):  # type: ignore[no-untyped-def,override]
        return self._module.sign(self._label, data, signature_algorithm)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._module.public_key(self._label)

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    def exchange(self, algorithm, peer_public_key):  # type: ignore[no-untyped-def,override]
        raise NotImplementedError("an HSM signing key does not do key agreement here")

    def private_numbers(self):  # type: ignore[no-untyped-def,override]
        raise NotImplementedError("the key cannot leave the module")

    def private_bytes(self, encoding, format, encryption_algorithm):  # type: ignore[no-untyped-def,override]
        raise NotImplementedError("the key cannot leave the module")

    def __copy__(self) -> HsmKey:
        return self

    def __deepcopy__(self, memo: dict) -> HsmKey:  # type: ignore[type-arg]
        return self


class HsmKeyStore:
    def __init__(self) -> None:
        self.module = Module()

    def generate(self, label: str) -> ec.EllipticCurvePublicKey:
        return self.module.generate(label)

    def signer(self, label: str) -> ec.EllipticCurvePrivateKey:
        return HsmKey(self.module, label)

    def has(self, label: str) -> bool:
        return label in self.module._keys

    def put_secret(self, label: str, secret: bytes) -> None:
        self.module._secrets[label] = secret

    def get_secret(self, label: str) -> bytes:
        return self.module._secrets[label]


@pytest.fixture
def hsm_instance(fresh_instance: Instance) -> Instance:
    instance = Instance(fresh_instance.settings, keystore=HsmKeyStore())
    initialise(instance)
    return instance


def test_the_hierarchy_is_signed_through_the_proxy(hsm_instance):
    signatures = hsm_instance.keystore.module.signatures
    # root_oca and issuing_oca by root-oca; root_dca and issuing_dca by root-dca; recovery by issuing-oca
    assert signatures == Counter({"root-oca": 2, "root-dca": 2, "issuing-oca": 1})
    hierarchy = hsm_instance.hierarchy
    hierarchy.certificate("issuing_oca").verify_directly_issued_by(hierarchy.certificate("root_oca"))
    hierarchy.certificate("issuing_dca").verify_directly_issued_by(hierarchy.certificate("root_dca"))
    assert not list(hsm_instance.settings.keystore_dir.glob("*.key.pem"))  # no key ever touched the disk


def test_certificates_and_crls_issued_through_the_proxy_verify(hsm_instance):
    module = hsm_instance.keystore.module
    before = module.signatures.copy()
    service = IssuanceService(hsm_instance.ca, hsm_instance.database, hsm_instance.policies)

    organisation = service.issue_from_csr(craft.organisation(craft.p256("hsm-o")), channel="api", requested_by=None)
    device = service.issue_from_csr(craft.device(craft.p256("hsm-d")), channel="api", requested_by=None)
    crl = hsm_instance.ca.sign_crl("crl", [RevokedEntry(organisation.certificate.serial_number,
                                                        organisation.certificate.not_valid_before_utc)],
                                   number=1, this_update=organisation.certificate.not_valid_before_utc)

    hierarchy = hsm_instance.hierarchy
    organisation.certificate.verify_directly_issued_by(hierarchy.certificate("issuing_oca"))
    device.certificate.verify_directly_issued_by(hierarchy.certificate("issuing_dca"))
    issuing_oca_key = hierarchy.certificate("issuing_oca").public_key()
    assert crl.is_signature_valid(issuing_oca_key)  # type: ignore[arg-type]
    assert module.signatures - before == Counter({"issuing-oca": 2, "issuing-dca": 1})
    # a signature the proxy produced is an ordinary ECDSA-SHA256 signature over the TBS
    issuing_oca_key.verify(organisation.certificate.signature, organisation.certificate.tbs_certificate_bytes,  # type: ignore[call-arg,union-attr]
                           ec.ECDSA(hashes.SHA256()))
