"""Property test of the certificate builder (smki/ca/builder.py) against the linter (smki/lint): for any
request within policy (random Device IDs, key usages, Remote Party Roles, Entity Identifiers and trading
names), the certificate the CA builds lints without an error, under its own profile and the one the
linter detects, and carries what was requested."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smki.ca.builder import CertificateRequest
from smki.core.asn1 import parse_hardware_module_name
from smki.core.errors import IssuanceFailed
from smki.core.eui64 import Eui64
from smki.csr import validate
from smki.csrgen import device_csr, organisation_csr
from smki.instance import Instance
from smki.issuance import request_for  # what the RA hands the CA for a validated CSR
from smki.lint.linter import lint_one
from smki.lint.source import LoadedCertificate
from tests.properties.conftest import KEYS, eui64s, keys, trading_names, usages

# The CA is stateless between examples; the instance (hierarchy and keys) is made once per test.
BUILDER_SETTINGS = settings(max_examples=60, deadline=None,
                            suppress_health_check=[HealthCheck.function_scoped_fixture])
# Within the certificates' life: from today to a few years on (UTCTime ends in 2049).
issue_times = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2035, 12, 31),
                           timezones=st.just(dt.UTC))


@st.composite
def organisation_csrs(draw: st.DrawFn, instance: Instance) -> bytes:
    role = draw(st.sampled_from([r for r in instance.policies.roles.roles if r.end_entity and r.usages]))
    return organisation_csr(draw(keys), role.ou, draw(eui64s), draw(st.sampled_from(role.usages)),
                            draw(st.none() | trading_names())).public_bytes(Encoding.DER)


@st.composite
def device_csrs(draw: st.DrawFn, instance: Instance) -> bytes:
    hw_type = instance.policies.environment.hardware_module_type.dotted_string
    return device_csr(draw(keys), draw(eui64s), draw(usages), hw_type).public_bytes(Encoding.DER)


def assert_lints_clean(instance: Instance, certificate: x509.Certificate, profile: str) -> None:
    loaded = LoadedCertificate("issued.der", 1, 1, certificate.public_bytes(Encoding.DER))
    given_profile = lint_one(loaded, instance.policies, profile=profile)
    detected = lint_one(loaded, instance.policies)
    assert given_profile.errors == [], [str(f) for f in given_profile.errors]
    assert detected.profile == profile, detected.profile_source
    assert detected.errors == [], [str(f) for f in detected.errors]


@BUILDER_SETTINGS
@given(data=st.data(), now=issue_times)
def test_every_organisation_certificate_built_lints_clean(instance, data, now):
    csr = validate(data.draw(organisation_csrs(instance)), instance.policies, "organisation")
    request = request_for(csr)

    certificate = instance.ca.issue(request, now=now)

    assert_lints_clean(instance, certificate, "organisation")
    subject = certificate.subject
    assert [a.value for a in subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)] == [
        request.remote_party_role]
    assert [a.value for a in subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)] == (
        [request.trading_name] if request.trading_name else [])
    [unique] = subject.get_attributes_for_oid(x509.NameOID.X500_UNIQUE_IDENTIFIER)
    assert Eui64(unique.value[1:]) == request.entity_identifier  # type: ignore[index]


@BUILDER_SETTINGS
@given(data=st.data(), now=issue_times)
def test_every_device_certificate_built_lints_clean(instance, data, now):
    csr = validate(data.draw(device_csrs(instance)), instance.policies, "device")
    request = request_for(csr)

    certificate = instance.ca.issue(request, now=now)

    assert_lints_clean(instance, certificate, "device")
    [name] = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert isinstance(name, x509.OtherName)
    assert Eui64(parse_hardware_module_name(name.value)[1]) == request.device_id


def test_a_subject_the_profile_cannot_carry_is_a_coded_refusal_not_a_crash(instance):
    """A request that did not come through the CSR validator (66 octets of CN) is refused with its code."""
    request = CertificateRequest("organisation", KEYS[0].public_key(),
                                 key_usage="digitalSignature", remote_party_role="02",
                                 entity_identifier=Eui64.parse("90B3D51F30010000"), trading_name="é" * 33)
    with pytest.raises(IssuanceFailed) as refused:
        instance.ca.issue(request)
    assert refused.value.code == "CA:E210"
