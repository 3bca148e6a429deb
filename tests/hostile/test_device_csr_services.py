"""The Device CSR services (SEC Appendix M XML, no OpenAPI document) with out-of-range batch numbers and
encoding declarations Python does not read: a coded answer, never a 5xx (issue 8 item 5)."""

from __future__ import annotations

from tests.hostile.conftest import Served
from tests.hostile.test_openapi_routes import HOSTILE_VALUES

POSTS = ("/1.0/PortalCSRBatch/SubmitCSRBatch", "/1.0/PortalCSRAdHoc/DeviceCertificateSigningRequest")


def test_a_batch_number_past_the_database_range_is_an_unknown_batch(served: Served) -> None:
    client = served.app.test_client()
    for value in [*HOSTILE_VALUES, "", "99999999999"]:
        response = client.get("/1.0/PortalCSRBatch/CSRBatchResult", query_string={"BatchId": value},
                              headers=served.callers["aro"])
        assert response.status_code < 500, (value, response.status_code)
    response = client.get("/1.0/PortalCSRBatch/CSRBatchResult?BatchId=2147483648", headers=served.callers["aro"])
    assert response.status_code == 200 and b"<ErrorCode>FM:" in response.data


def test_unknown_encoding_declarations_get_a_coded_answer(served: Served) -> None:
    client = served.app.test_client()
    for encoding in ("x-unknown", "foo", "utf-32", "hex", "rot13", ""):
        body = f'<?xml version="1.0" encoding="{encoding}"?><SubmitCSRBatch/>'.encode()
        for path in POSTS:
            response = client.post(path, data=body, headers={**served.callers["aro"],
                                                              "Content-Type": "application/xml"})
            assert response.status_code < 500, (path, encoding, response.status_code)
