"""IKI client certificates: issued by the sandbox IKI CA to AROs and their systems, accepted over mutual
TLS, refused once the ARO is withdrawn."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.serving import make_server

from smki.ra import audit
from smki.ra.forms import FormService
from smki.ra.identity import NotAuthenticated
from smki.ra.iki import IkiAuthority
from smki.ra.population import PopulationBuilder
from tests.ra.conftest import Population


def system_csr(key: ec.EllipticCurvePrivateKey) -> str:
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "meter-ops-1")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_system_credential_is_bound_to_the_aro(ra, population: Population) -> None:
    forms = FormService(ra)
    aro = ra.authenticate_token(population.aro_a.token)
    csr = system_csr(ec.generate_private_key(ec.SECP256R1()))
    submission, _ = forms.submit("system_credential_request", {"system_name": "meter-ops-1", "csr": csr}, aro)
    operator = ra.authenticate_token(population.operator.token)
    forms.verify(submission.id, operator, {"system_verified": True})
    approved, _ = forms.approve(submission.id, operator)
    pem = approved.result["certificate"].encode()
    system = ra.authenticate_certificate(pem)
    assert system.person_id == population.aro_a.person_id and system.system == "meter-ops-1"
    assert system.label.endswith("/system:meter-ops-1")
    PopulationBuilder(ra).withdraw(population.aro_a)
    with pytest.raises(NotAuthenticated) as refused:
        ra.authenticate_certificate(pem)
    assert refused.value.code == "AU:TOK03"


def test_certificate_from_another_ca_is_refused(ra, population: Population) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "SMKI Sandbox IKI CA")])
    import datetime as dt
    now = dt.datetime.now(dt.UTC)
    forged = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
              .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
              .sign(key, hashes.SHA256()))
    with pytest.raises(NotAuthenticated) as refused:
        ra.authenticate_certificate(forged.public_bytes(serialization.Encoding.PEM))
    assert refused.value.code == "AU:CRT02"


@pytest.fixture
def mtls_server(app, ra, tmp_path):  # type: ignore[no-untyped-def]
    iki = IkiAuthority(ra.instance, ra.settings)
    certfile, keyfile = iki.server_credentials(["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    context.load_verify_locations(iki.certificate_path)
    context.verify_mode = ssl.CERT_OPTIONAL
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}", iki
    server.shutdown()
    thread.join()


def get(url: str, iki: IkiAuthority, client: tuple[str, str] | None = None) -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=str(iki.certificate_path))
    if client:
        context.load_cert_chain(*client)
    try:
        with urllib.request.urlopen(url, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_mutual_tls_authenticates_the_aro(mtls_server, ra, population: Population, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base, iki = mtls_server

    def issue(session):  # type: ignore[no-untyped-def]
        return iki.issue_person_certificate(session, person_id=population.aro_a.person_id, name="Ada ARO",
                                            organisation="Alpha Energy Supply Ltd")
    certificate, key = audit.audited(ra.database, issue)
    (tmp_path / "ada.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ada.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    client = (str(tmp_path / "ada.crt"), str(tmp_path / "ada.key"))
    url = f"{base}/api/v1/ra/parties/{population.supplier_a}/decisions"
    status, body = get(url, iki, client)
    assert status == 200 and body == {"decisions": []}
    status, body = get(url, iki)  # no certificate, no token
    assert status == 401 and body["code"] == "AU:TOK01"
    PopulationBuilder(ra).withdraw(population.aro_a)
    status, body = get(url, iki, client)
    assert status == 401 and body["code"] == "AU:TOK03"


def test_iki_ca_made_by_several_processes_at_once_is_one_certificate(instance, ra) -> None:
    """Web workers start together and each may find no IKI CA yet: they must all end with the same CA
    certificate (first writer wins), or a client certificate could chain to a CA that was overwritten."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    queue = context.Queue()

    def make() -> None:
        barrier.wait()
        queue.put(IkiAuthority(instance, ra.settings).certificate.fingerprint(hashes.SHA256()))

    workers = [context.Process(target=make) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    fingerprints = {queue.get(timeout=5) for _ in workers}
    assert len(fingerprints) == 1
    assert IkiAuthority(instance, ra.settings).certificate.fingerprint(hashes.SHA256()) in fingerprints
    assert not list((instance.settings.instance_dir).rglob("*.tmp"))
