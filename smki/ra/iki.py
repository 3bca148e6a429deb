"""The sandbox IKI CA: a small CA apart from the SMKI hierarchy, issuing the client certificates AROs and
their systems authenticate with (mutual TLS when ``smki serve`` runs with TLS).

Its key lives in the instance key store (label ``iki-ca``), its certificate in ``<instance>/iki/ca.pem``.
Client certificates are EC P-256, clientAuth, and bound to a person in ``ra_credential``; withdrawing the
person revokes them there (the RA refuses a revoked certificate even while TLS accepts it).
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.orm import Session

from smki.core.errors import SmkiError
from smki.core.files import create_once
from smki.instance import Instance
from smki.ra import audit
from smki.ra.identity import register_client_certificate
from smki.ra.settings import RaSettings

KEY_LABEL = "iki-ca"
BAD_CSR = "FM:IKI01"
BAD_CERTIFICATE = "AU:CRT03"


def parse_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise SmkiError(BAD_CSR, f"the system CSR is not a PEM PKCS#10 request ({exc}).", field="csr") from exc
    if not csr.is_signature_valid:
        raise SmkiError(BAD_CSR, "the system CSR's signature does not verify.", field="csr")
    if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey):
        raise SmkiError(BAD_CSR, "the system key must be an EC key (P-256).", field="csr")
    return csr


def load_certificate(data: bytes | str) -> x509.Certificate:
    raw = data.encode() if isinstance(data, str) else data
    try:
        return x509.load_pem_x509_certificate(raw) if raw.lstrip().startswith(b"-----") \
            else x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise SmkiError(BAD_CERTIFICATE, "the client certificate cannot be read.") from exc


class IkiAuthority:
    def __init__(self, instance: Instance, settings: RaSettings) -> None:
        self.instance = instance
        self.settings = settings
        self.directory: Path = instance.settings.instance_dir / "iki"

    @property
    def certificate_path(self) -> Path:
        return self.directory / "ca.pem"

    @cached_property
    def certificate(self) -> x509.Certificate:
        if not self.certificate_path.exists():
            self._create()
        return x509.load_pem_x509_certificate(self.certificate_path.read_bytes())

    def _create(self) -> None:
        keystore = self.instance.keystore
        public = keystore.signer(KEY_LABEL).public_key() if keystore.has(KEY_LABEL) else keystore.generate(KEY_LABEL)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.settings.iki["ca_name"])])
        now = dt.datetime.now(dt.UTC)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now - dt.timedelta(minutes=5))
                       .not_valid_after(now + dt.timedelta(days=int(self.settings.iki["ca_validity_days"])))
                       .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                       .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                      critical=True)
                       .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                       .sign(keystore.signer(KEY_LABEL), hashes.SHA256()))
        self.directory.mkdir(parents=True, exist_ok=True)
        # Two processes may get here at once (web workers starting together): the first certificate written
        # wins and every process loads that one, so no client certificate is signed under a CA nobody keeps.
        create_once(self.certificate_path, certificate.public_bytes(serialization.Encoding.PEM))

    def _issue(self, public_key: ec.EllipticCurvePublicKey, common_name: str,
               organisation: str | None) -> x509.Certificate:
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]
        if organisation:
            attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]))
        now = dt.datetime.now(dt.UTC)
        return (x509.CertificateBuilder().subject_name(x509.Name(attributes)).issuer_name(self.certificate.subject)
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=int(self.settings.iki["client_validity_days"])))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.certificate.public_key()), critical=False)  # type: ignore[arg-type]
                .sign(self.instance.keystore.signer(KEY_LABEL), hashes.SHA256()))

    def issue_system_certificate(self, session: Session, *, person_id: int, system: str,
                                 csr_pem: str) -> x509.Certificate:
        """A client certificate for a system acting under the ARO ``person_id`` (audited in ``session``)."""
        csr = parse_csr(csr_pem)
        audit.append(session, actor="ra:iki", action="credential.issued", subject=f"person:{person_id}",
                     detail={"kind": "client_certificate", "system": system})
        certificate = self._issue(csr.public_key(), system, None)  # type: ignore[arg-type]
        register_client_certificate(session, person_id, certificate, system=system)
        return certificate

    def issue_person_certificate(self, session: Session, *, person_id: int, name: str,
                                 organisation: str | None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A portal client certificate for a person, with a new key (the sandbox's stand-in for the RA's
        PIN-protected token)."""
        key = ec.generate_private_key(ec.SECP256R1())
        audit.append(session, actor="ra:iki", action="credential.issued", subject=f"person:{person_id}",
                     detail={"kind": "client_certificate"})
        certificate = self._issue(key.public_key(), name, organisation)
        register_client_certificate(session, person_id, certificate)
        return certificate, key

    def server_credentials(self, hostnames: list[str]) -> tuple[Path, Path]:
        """A TLS server certificate and key for the sandbox service, issued by the IKI CA (made once, kept in
        ``<instance>/iki/``), so that clients holding the IKI CA certificate can verify the server."""
        import ipaddress
        import os

        certificate_path, key_path = self.directory / "server.crt", self.directory / "server.key"
        if certificate_path.exists() and key_path.exists():
            return certificate_path, key_path
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        now = dt.datetime.now(dt.UTC)
        certificate = (x509.CertificateBuilder()
                       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
                       .issuer_name(self.certificate.subject).public_key(key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now - dt.timedelta(minutes=5))
                       .not_valid_after(now + dt.timedelta(days=int(self.settings.iki["client_validity_days"])))
                       .add_extension(x509.SubjectAlternativeName(names), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                       .sign(self.instance.keystore.signer(KEY_LABEL), hashes.SHA256()))
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return certificate_path, key_path


def tls_options(instance: Instance, host: str) -> dict[str, object]:
    """gunicorn options for serving with TLS and optional IKI client certificates: a client that presents
    an IKI certificate is authenticated by it; one without may still use an API token."""
    import ssl

    from smki.ra.settings import load_ra_settings

    iki = IkiAuthority(instance, load_ra_settings(instance.settings.policies_dir))
    hostnames = [host] if host not in ("0.0.0.0", "::") else ["localhost", "127.0.0.1"]
    certfile, keyfile = iki.server_credentials(hostnames)
    _ = iki.certificate  # makes the CA certificate file if needed
    return {"certfile": str(certfile), "keyfile": str(keyfile), "ca_certs": str(iki.certificate_path),
            "cert_reqs": ssl.CERT_OPTIONAL}
