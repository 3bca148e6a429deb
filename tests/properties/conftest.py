"""Shared pieces of the property tests: the policies, the Device CSR services' fixtures, and strategies.

Every test here is bounded (``settings(max_examples=..., deadline=None)``); under CI the profile
registered in tests/conftest.py makes the runs derandomized, so a failure there repeats.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import strategies as st

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.eui64 import Eui64
from smki.core.policy import Policies, load_policies
from tests.devicecsr.conftest import app_for, client, gate, make_runtime, runtime  # noqa: F401 - fixtures

# A handful of keys, made once: key generation is not what is under test, and drawing from a few keeps
# each example cheap.
KEYS = tuple(ec.generate_private_key(ec.SECP256R1()) for _ in range(4))


@pytest.fixture(scope="session")
def policies() -> Policies:
    return load_policies(DEFAULT_POLICIES_DIR)


eui64s = st.binary(min_size=8, max_size=8).map(Eui64)
keys = st.sampled_from(KEYS)
usages = st.sampled_from(("digitalSignature", "keyAgreement"))


def trading_names() -> st.SearchStrategy[str]:
    """A CN the policy allows: 1 to 64 octets of UTF-8 (any characters, not only ASCII)."""
    return st.text(min_size=1, max_size=64).filter(lambda name: len(name.encode("utf-8")) <= 64)


def wrap(body: bytes, width: int, newline: bytes) -> bytes:
    return newline.join(body[i:i + width] for i in range(0, len(body), width))


@st.composite
def encodings(draw: st.DrawFn, der: bytes) -> bytes | str:
    """One DER in any encoding the real service accepts: DER, PEM under either label, base64 on one line or
    wrapped at 64 or 76 columns with LF or CRLF, as bytes or as text."""
    b64 = base64.b64encode(der)
    form = draw(st.sampled_from(("der", "pem", "new-pem", "base64", "wrapped")))
    newline = draw(st.sampled_from((b"\n", b"\r\n")))
    body = wrap(b64, draw(st.sampled_from((64, 76))), newline)
    encoded = {
        "der": der,
        "pem": b"-----BEGIN CERTIFICATE REQUEST-----" + newline + body + newline
               + b"-----END CERTIFICATE REQUEST-----" + newline,
        "new-pem": b"-----BEGIN NEW CERTIFICATE REQUEST-----" + newline + body + newline
                   + b"-----END NEW CERTIFICATE REQUEST-----" + newline,
        "base64": b64,
        "wrapped": body,
    }[form]
    if form != "der" and draw(st.booleans()):
        return encoded.decode("ascii")
    return encoded
