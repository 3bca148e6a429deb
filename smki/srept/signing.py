"""The key that signs evidence packs' manifests, and its certificate.

Which key, and why: a key of its own (``srept-evidence`` in the instance's key store, ECDSA P-256), certified by
the sandbox's IKI CA (:mod:`smki.ra.iki`) for digital signature only. Not an SMKI CA key: the Root and Issuing
CAs sign certificates and CRLs under their profiles and nothing else, and a pack signed by one would look like an
SMKI artefact. Not the IKI CA key itself: a CA key signs certificates. The IKI CA is the sandbox's own trust
anchor for its services (it already certifies the AROs' and systems' client certificates and the TLS server),
so a Party that trusts the sandbox's TLS already holds the certificate that verifies a pack, and a pack can be
checked anywhere with that certificate alone (``smki srept verify PACK [--trust iki-ca.pem]``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smki.instance import Instance
from smki.ra.iki import KEY_LABEL as IKI_CA_KEY
from smki.ra.iki import IkiAuthority
from smki.ra.settings import load_ra_settings

KEY_LABEL = "srept-evidence"
COMMON_NAME = "SMKI sandbox SREPT evidence signer"
VALIDITY_DAYS = 3650


class EvidenceSigner:
    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.iki = IkiAuthority(instance, load_ra_settings(instance.settings.policies_dir))
        self.certificate_path: Path = instance.settings.instance_dir / "srept" / "evidence-signer.pem"

    @property
    def iki_ca(self) -> x509.Certificate:
        return self.iki.certificate

    def certificate(self) -> x509.Certificate:
        """The signer's certificate, made (with the key) the first time it is needed."""
        keystore = self.instance.keystore
        if not keystore.has(KEY_LABEL):
            keystore.generate(KEY_LABEL)
        public = keystore.signer(KEY_LABEL).public_key()
        if self.certificate_path.exists():
            existing = x509.load_pem_x509_certificate(self.certificate_path.read_bytes())
            if existing.public_key() == public and existing.not_valid_after_utc > dt.datetime.now(dt.UTC):
                return existing
        now = dt.datetime.now(dt.UTC)
        issuer = self.iki_ca
        certificate = (x509.CertificateBuilder()
                       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)]))
                       .issuer_name(issuer.subject).public_key(public).serial_number(x509.random_serial_number())
                       .not_valid_before(now - dt.timedelta(minutes=5))
                       .not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS))
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                                      critical=True)
                       .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                           issuer.public_key()), critical=False)  # type: ignore[arg-type]
                       .sign(keystore.signer(IKI_CA_KEY), hashes.SHA256()))
        self.certificate_path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.certificate_path.with_suffix(f".{os.getpid()}.tmp")
        staged.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        staged.replace(self.certificate_path)
        return certificate

    def sign(self, data: bytes) -> bytes:
        """ECDSA with SHA-256 over ``data``, DER-encoded."""
        self.certificate()
        return self.instance.keystore.signer(KEY_LABEL).sign(data, ec.ECDSA(hashes.SHA256()))
