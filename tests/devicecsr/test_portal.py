"""Portal batch upload: a zip of .csr files in, a zip of .crt files and a .txt report out. The upload form
carries the portal's CSRF token; the Appendix M services, called by systems with their own credentials,
need none and never accept the portal's session."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator

import pytest
from cryptography import x509
from sqlalchemy import func, select

from smki.devicecsr.models import DeviceCsrBatch
from tests.devicecsr.conftest import OWNED_DEVICE, bad_signature_b64, batch_xml, csr_b64, parse_answer, text
from tests.portal import form_token, portal_sign_in

UPLOAD = "/portal/device-csr-batches"


def pem(b64: str) -> bytes:
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n".encode()


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(client, data: bytes, name: str = "meters-0001.zip", *, csrf: bool = True,  # type: ignore[no-untyped-def]
           headers: dict[str, str] | None = None):
    """Post the upload form as the page would: with the CSRF token the page carries, unless ``csrf`` is False."""
    headers = {"X-SMKI-Client": "supplier"} if headers is None else headers
    form: dict[str, object] = {"archive": (io.BytesIO(data), name)}
    if csrf:
        form["csrf_token"] = form_token(client, UPLOAD, headers=headers)
    return client.post(UPLOAD, data=form, headers=headers, content_type="multipart/form-data")


def batches(instance) -> int:  # type: ignore[no-untyped-def]
    with instance.database.session() as session:
        return session.scalar(select(func.count()).select_from(DeviceCsrBatch)) or 0


def test_the_result_zip_has_a_crt_per_issued_csr_and_a_report_line_per_csr(client, runtime, instance):
    files = {"meter-a.csr": pem(csr_b64(0x00DB000000009001)),
             "meter-b.csr": base64.b64decode(csr_b64(0x00DB000000009002, "keyAgreement")),  # DER
             "meter-c.csr": pem(bad_signature_b64(0x00DB000000009003)),
             "meter-d.csr": csr_b64(OWNED_DEVICE).encode()}                                   # bare base64
    response = upload(client, make_zip(files))
    assert response.status_code == 303
    page = response.headers["Location"]
    assert b"PENDING" in client.get(page, headers={"X-SMKI-Client": "supplier"}).data

    runtime.jobs.run_pending()

    status_page = client.get(page, headers={"X-SMKI-Client": "supplier"}).data.decode()
    assert "COMPLETED" in status_page and "meters-0001-response.zip" in status_page
    result = client.get(f"{page}/meters-0001-response.zip", headers={"X-SMKI-Client": "supplier"})
    assert result.status_code == 200 and result.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(result.data))
    assert sorted(archive.namelist()) == ["meter-a.crt", "meter-b.crt", "meters-0001-response.txt"]
    for name in ("meter-a", "meter-b"):
        certificate = x509.load_pem_x509_certificate(archive.read(f"{name}.crt"))
        certificate.verify_directly_issued_by(instance.hierarchy.certificate("issuing_dca"))
    report = archive.read("meters-0001-response.txt").decode().splitlines()
    assert report == ["00DB000000009001,meter-a.csr,success,-", "00DB000000009002,meter-b.csr,success,-",
                      "-,meter-c.csr,error,CR:CSR15", f"{OWNED_DEVICE},meter-d.csr,ineligible,IN:STATE1"]


@pytest.mark.parametrize(("files", "code", "phrase"), [
    ({"dir/meter.csr": b"x"}, "FM:AA1", "folder"),
    ({"meter.txt": b"x"}, "FM:AA1", "not a .csr file"),
    ({"meter.csr": b"x" * 70_000}, "FM:AA1", "a CSR is at most"),
    ({}, "FM:AA1", "no .csr files"),
])
def test_a_bad_zip_is_refused_with_its_code_and_nothing_is_stored(client, instance, files, code, phrase):
    response = upload(client, make_zip(files))

    assert response.status_code == 400
    assert code in response.data.decode() and phrase in response.data.decode()
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceCsrBatch)) == 0


def test_duplicate_names_and_non_zips_are_refused(client, instance):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("meter.csr", b"a")
        with pytest.warns(UserWarning):
            archive.writestr("meter.csr", b"b")
    assert "appears twice" in upload(client, buffer.getvalue()).data.decode()
    assert "not a readable zip" in upload(client, b"PK-but-not-really").data.decode()


def test_too_many_csrs_is_fm_aa2(make_runtime, app_for):
    client = app_for(make_runtime(max_batch_csrs=3)).test_client()
    response = upload(client, make_zip({f"m{n}.csr": b"x" for n in range(4)}))
    assert response.status_code == 400 and "FM:AA2" in response.data.decode()


@pytest.fixture
def portal_server(instance, tmp_path, app_for) -> Iterator[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """The app with the Device CSR services behind the real RA, as smki serve runs them."""
    from smki.devicecsr.runtime import DeviceCsrRuntime
    from tests.conftest import serving

    runtime = DeviceCsrRuntime.build(instance, queue=f"sqlite:///{tmp_path / 'portal-queue.db'}")
    with serving(app_for(runtime)) as port:
        yield f"http://127.0.0.1:{port}", runtime


@pytest.mark.browser
def test_an_aro_uploads_a_zip_in_the_browser_and_downloads_the_result(browser, portal_server, tmp_path,
                                                                      population):
    import urllib.request

    from selenium.webdriver.common.by import By

    from tests.portal import sign_in, submit

    base, runtime = portal_server
    archive = tmp_path / "rollout-7.zip"
    archive.write_bytes(make_zip({"m1.csr": pem(csr_b64(0x00DB00000000A001)),
                                  "m2.csr": pem(csr_b64(0x00DB00000000A002))}))
    # An ARO signs in to the RA's portal, as a person would, and uploads from there.
    sign_in(browser, base, population.aro_a.token)
    browser.get(f"{base}{UPLOAD}")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=archive]").text == "Zip file of CSRs"
    browser.find_element(By.ID, "archive").send_keys(str(archive))
    submit(browser, "upload")
    assert browser.find_element(By.ID, "status").text == "PENDING"

    runtime.jobs.run_pending()
    browser.refresh()

    assert browser.find_element(By.ID, "status").text == "COMPLETED"
    link = browser.find_element(By.ID, "download")
    assert link.text == "Download rollout-7-response.zip"
    # the download is the ARO's alone: the portal session in the browser, a Bearer token for a script
    with urllib.request.urlopen(link.get_attribute("href"), timeout=10) as anonymous:  # no session, no token
        assert "/portal/login" in anonymous.geturl()  # sent to sign in, not given the certificates
        assert anonymous.headers.get_content_type() == "text/html"
    script = urllib.request.Request(link.get_attribute("href"),
                                    headers={"Authorization": f"Bearer {population.aro_a.token}"})
    with urllib.request.urlopen(script, timeout=10) as response:
        names = sorted(zipfile.ZipFile(io.BytesIO(response.read())).namelist())
    assert names == ["m1.crt", "m2.crt", "rollout-7-response.txt"]


def test_a_person_not_signed_in_is_sent_to_sign_in_and_a_script_is_refused(instance, tmp_path, app_for):
    from smki.devicecsr.runtime import DeviceCsrRuntime

    client = app_for(DeviceCsrRuntime.build(instance, queue=f"sqlite:///{tmp_path / 'q.db'}")).test_client()

    page = client.get(UPLOAD)
    assert page.status_code == 302 and page.headers["Location"].startswith("/portal/login?next=")
    # a form token from the sign-in page, but no sign-in: refused as not authenticated
    posted = client.post(UPLOAD, data={"archive": (io.BytesIO(make_zip({"a.csr": b"x"})), "a.zip"),
                                       "csrf_token": form_token(client, "/portal/login")},
                         content_type="multipart/form-data")
    assert posted.status_code == 403 and "WF:AUTH1" in posted.data.decode()
    assert batches(instance) == 0


@pytest.fixture
def ra_client(instance, tmp_path, app_for):  # type: ignore[no-untyped-def]
    """The app with the Device CSR services behind the real RA (the default gate)."""
    from smki.devicecsr.runtime import DeviceCsrRuntime

    return app_for(DeviceCsrRuntime.build(instance, queue=f"sqlite:///{tmp_path / 'q.db'}")).test_client()


def test_an_upload_without_the_pages_csrf_token_is_refused_and_stores_nothing(ra_client, instance, population):
    # A signed-in ARO's browser, made by another site to post a zip here: it sends the session cookie, but
    # cannot read the upload page, so it has no token.
    portal_sign_in(ra_client, population.aro_a.token)
    archive = make_zip({"m1.csr": pem(csr_b64(0x00DB00000000E001))})

    forged = upload(ra_client, archive, csrf=False, headers={})

    assert forged.status_code == 400 and forged.mimetype == "text/html"
    assert "FM:CSRF1" in forged.data.decode() and "reload the page" in forged.data.decode()
    assert batches(instance) == 0
    # the same person, from the page itself: accepted
    assert upload(ra_client, archive, headers={}).status_code == 303
    assert batches(instance) == 1


def test_a_token_from_another_session_is_refused(ra_client, app_for, instance, tmp_path, population):
    from smki.devicecsr.runtime import DeviceCsrRuntime

    portal_sign_in(ra_client, population.aro_a.token)
    other = app_for(DeviceCsrRuntime.build(instance, queue=f"sqlite:///{tmp_path / 'q2.db'}")).test_client()
    portal_sign_in(other, population.aro_a.token)
    foreign = form_token(other, UPLOAD)

    forged = ra_client.post(UPLOAD, data={"archive": (io.BytesIO(make_zip({"a.csr": b"x"})), "a.zip"),
                                          "csrf_token": foreign}, content_type="multipart/form-data")

    assert forged.status_code == 400 and "FM:CSRF1" in forged.data.decode()
    assert batches(instance) == 0


def test_the_web_services_need_no_token_and_never_accept_the_portal_session(ra_client, instance, population):
    portal_sign_in(ra_client, population.aro_a.token)
    body = batch_xml([("m1", csr_b64(0x00DB00000000E101))])
    xml_only = {"Content-Type": "application/xml"}

    by_cookie = parse_answer(ra_client.post("/1.0/PortalCSRBatch/SubmitCSRBatch", data=body, headers=xml_only).data)
    assert text(by_cookie, "{}Error/{}ErrorCode") == "WF:AUTH1"  # the session cookie is not a credential here
    assert batches(instance) == 0

    bearer = {**xml_only, "Authorization": f"Bearer {population.aro_a.token}"}
    by_token = parse_answer(ra_client.post("/1.0/PortalCSRBatch/SubmitCSRBatch", data=body, headers=bearer).data)
    assert text(by_token, "{}BatchStatus") == "PENDING"  # no CSRF token: the service is exempt
    assert batches(instance) == 1
