"""Sandbox certificates compared field for field, in raw DER, with the DCC's own test certificates.

Each sandbox certificate is set beside a DCC certificate of the same kind and key usage (from
``shared/interop``) and every field GBCS devices and Parties' software look at is compared: tags, string
types, order, criticality and, where the content does not depend on the key, the exact bytes. Where the
sandbox deliberately differs (its CA names; GeneralizedTime for CA notAfter from 2050) the documented
behaviour is asserted instead.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as ax
from cryptography import x509 as cx

from smki.ca.identifiers import subject_key_identifier
from smki.core.eui64 import Eui64
from smki.csr import ECDSA_SHA256_DER
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.schema import migrate
from tests.ca import craft

KEY_USAGE = "2.5.29.15"
BASIC_CONSTRAINTS = "2.5.29.19"
POLICIES = "2.5.29.32"
SKI = "2.5.29.14"
AKI = "2.5.29.35"
SAN = "2.5.29.17"
WRAPPED_APEX = "1.3.6.1.5.5.7.1.20"
CN, OU, UID = "2.5.4.3", "2.5.4.11", "2.5.4.45"
# universal tags
BIT_STRING, UTF8_STRING, PRINTABLE_STRING, UTC_TIME, GENERALIZED_TIME = 3, 12, 19, 23, 24

# DCC references: (file, kind, usage). Supplier DS carries a trading name (CN); supplier KA does not.
ORG_DS_WITH_CN = "org/org-Z1-supplier-90b3d51f30010000-ds-2025-26db10e8.pem"
ORG_DS = "org/org-Z1-networkOperator-90b3d51f30020000-ds-2025-179c2f05.pem"
ORG_KA = "org/org-Z1-supplier-90b3d51f30010000-ka-2025-4a3f7bf8.pem"
DEVICE_DS = "device/device-E357-00db123456789001-ds-71c56392.pem"
DEVICE_KA = "device/device-E357-00db123456789001-ka-413b126a.pem"
ISSUING_OCA = "ca/oca-ZA-to-Z1-71872bdb.pem"
DEVICE_ID = Eui64.parse("00DB123456789001")  # the same Device ID as the DCC references


def load(path: Path) -> ax.Certificate:
    _, _, der = asn1_pem.unarmor(path.read_bytes())
    return ax.Certificate.load(der)


def from_der(der: bytes) -> ax.Certificate:
    return ax.Certificate.load(der)


def interop_files(interop_dir: Path, *folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (interop_dir / folder).glob("*.pem")
                  if not p.name.startswith("rtds-"))


def tbs(cert: ax.Certificate) -> ax.TbsCertificate:
    return cert["tbs_certificate"]


def rdn_shape(name: ax.Name) -> list[tuple[str, int, int]]:
    """(attribute OID, universal tag of the value, values in the RDN) for each RDN, in order."""
    out = []
    for rdn in name.chosen:
        for attribute in rdn:
            value = attribute["value"]
            inner = value.chosen if isinstance(value, ax.DirectoryString) else value
            out.append((attribute["type"].dotted, inner.tag, len(rdn)))
    return out


def rdn_values(name: ax.Name) -> list[bytes]:
    return [attribute["value"].contents if not isinstance(attribute["value"], ax.DirectoryString)
            else attribute["value"].chosen.contents for rdn in name.chosen for attribute in rdn]


def extensions(cert: ax.Certificate) -> list[tuple[str, bool]]:
    return [(e["extn_id"].dotted, bool(e["critical"].native)) for e in tbs(cert)["extensions"]]


def extension_value(cert: ax.Certificate, oid: str) -> bytes:
    """The extnValue OCTET STRING's contents: the DER of the extension itself."""
    return next(e["extn_value"].contents for e in tbs(cert)["extensions"] if e["extn_id"].dotted == oid)


def serial_octets(cert: ax.Certificate) -> bytes:
    return tbs(cert)["serial_number"].contents


def times(cert: ax.Certificate) -> tuple[ax.Time, ax.Time]:
    validity = tbs(cert)["validity"]
    return validity["not_before"], validity["not_after"]


@pytest.fixture(scope="module")
def issued(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           template_instance_dir: Path) -> dict[str, ax.Certificate]:
    """Sandbox certificates of every shape, issued once for the module on its own SQLite ledger."""
    import shutil

    from smki.core.config import DEFAULT_POLICIES_DIR, Settings

    directory = tmp_path_factory.mktemp("profile") / "instance"
    shutil.copytree(template_instance_dir, directory)
    instance = Instance(Settings(directory, f"sqlite:///{directory / 'smki.db'}", DEFAULT_POLICIES_DIR, None))
    migrate(instance.database)
    service = IssuanceService(instance.ca, instance.database, instance.policies)

    def issue(raw: bytes) -> ax.Certificate:
        return from_der(service.issue_from_csr(raw, channel="operator", requested_by="test").der)

    out = {
        "org_ds_cn": issue(craft.organisation(craft.p256("a"), "02", "digitalSignature", "GITTESTSUPPLIER")),
        "org_ka": issue(craft.organisation(craft.p256("b"), "02", "keyAgreement")),
        "org_ds_03": issue(craft.organisation(craft.p256("c"), "03", "digitalSignature")),
        "org_ka_04": issue(craft.organisation(craft.p256("d"), "04", "keyAgreement", entity=Eui64.parse(
            "90B3D51F30000002"))),
        "org_ds_7f_cn": issue(craft.organisation(craft.p256("e"), "7F", "digitalSignature", "Other Party Ltd")),
        "org_ka_08": issue(craft.organisation(craft.p256("f"), "08", "keyAgreement")),
        "device_ds": issue(craft.device(craft.p256("g"), "digitalSignature", [craft.hmn(DEVICE_ID.value)])),
        "device_ka": issue(craft.device(craft.p256("h"), "keyAgreement", [craft.hmn(DEVICE_ID.value)])),
    }
    for name in ("root_oca", "issuing_oca", "root_dca", "issuing_dca", "recovery"):
        out[name] = load(instance.hierarchy.path(name))
    return out


ORG_PAIRS = [("org_ds_cn", ORG_DS_WITH_CN), ("org_ka", ORG_KA), ("org_ds_03", ORG_DS), ("org_ka_04", ORG_KA),
             ("org_ds_7f_cn", ORG_DS_WITH_CN), ("org_ka_08", ORG_KA), ("recovery", ORG_DS)]
DEVICE_PAIRS = [("device_ds", DEVICE_DS), ("device_ka", DEVICE_KA)]
ALL_PAIRS = ORG_PAIRS + DEVICE_PAIRS


@pytest.mark.parametrize(("ours", "theirs"), ALL_PAIRS)
def test_version_signature_algorithm_and_spki_match_the_dcc(issued, interop_dir, ours, theirs):
    mine, dcc = issued[ours], load(interop_dir / theirs)
    assert tbs(mine)["version"].native == tbs(dcc)["version"].native == "v3"
    # ecdsa-with-SHA256, parameters absent: identical DER inside the TBS and outside it
    for cert in (mine, dcc):
        assert tbs(cert)["signature"].dump() == ECDSA_SHA256_DER
        assert cert["signature_algorithm"].dump() == ECDSA_SHA256_DER
    spki, dcc_spki = tbs(mine)["subject_public_key_info"], tbs(dcc)["subject_public_key_info"]
    assert spki["algorithm"].dump() == dcc_spki["algorithm"].dump()  # id-ecPublicKey, prime256v1
    assert spki["algorithm"]["parameters"].chosen.native == "secp256r1"
    point = spki["public_key"].contents
    assert len(point) == 66 and point[0] == 0x00 and point[1] == 0x04  # 0 unused bits, uncompressed


@pytest.mark.parametrize(("ours", "theirs"), ALL_PAIRS)
def test_serial_is_sixteen_positive_octets_like_the_dcc(issued, interop_dir, ours, theirs):
    for cert in (issued[ours], load(interop_dir / theirs)):
        octets = serial_octets(cert)
        assert len(octets) == 16
        assert 0x01 <= octets[0] <= 0x7F


def test_every_dcc_certificate_has_the_serial_shape_the_sandbox_copies(interop_dir):
    for path in interop_files(interop_dir, "org", "device", "ca"):
        octets = serial_octets(load(path))
        assert len(octets) == 16 and 0x01 <= octets[0] <= 0x7F, path.name


@pytest.mark.parametrize(("ours", "theirs"), ORG_PAIRS)
def test_organisation_issuer_is_ou_then_cn_printable_like_z1(issued, interop_dir, ours, theirs):
    mine, dcc = issued[ours], load(interop_dir / theirs)
    expected = [(OU, PRINTABLE_STRING, 1), (CN, PRINTABLE_STRING, 1)]
    assert rdn_shape(tbs(mine)["issuer"]) == rdn_shape(tbs(dcc)["issuer"]) == expected
    # the exact DER of the sandbox Issuing OCA's subject
    assert tbs(mine)["issuer"].dump() == tbs(issued["issuing_oca"])["subject"].dump()
    assert rdn_values(tbs(mine)["issuer"]) == [b"07", b"S1"]  # sandbox name, deliberately not Z1


@pytest.mark.parametrize(("ours", "theirs"), DEVICE_PAIRS)
def test_device_issuer_is_a_single_printable_cn_like_e357(issued, interop_dir, ours, theirs):
    mine, dcc = issued[ours], load(interop_dir / theirs)
    assert rdn_shape(tbs(mine)["issuer"]) == rdn_shape(tbs(dcc)["issuer"]) == [(CN, PRINTABLE_STRING, 1)]
    assert tbs(mine)["issuer"].dump() == tbs(issued["issuing_dca"])["subject"].dump()
    assert rdn_values(tbs(mine)["issuer"]) == [b"S357"]


def _midnight_to_last_second(not_before: dt.datetime, not_after: dt.datetime, years: int) -> bool:
    return (not_before.time() == dt.time(0, 0, 0) and not_after.time() == dt.time(23, 59, 59)
            and not_after + dt.timedelta(seconds=1) == not_before.replace(year=not_before.year + years))


@pytest.mark.parametrize(("ours", "theirs"), ORG_PAIRS)
def test_organisation_validity_is_utctime_ten_years_midnight_to_last_second(issued, interop_dir, ours, theirs):
    for cert in (issued[ours], load(interop_dir / theirs)):
        not_before, not_after = times(cert)
        assert (not_before.chosen.tag, not_after.chosen.tag) == (UTC_TIME, UTC_TIME)
    not_before, not_after = times(issued[ours])
    assert _midnight_to_last_second(not_before.native, not_after.native, 10)
    assert not_before.native.date() == dt.datetime.now(dt.UTC).date()


def test_the_validity_pattern_is_the_one_of_z1_and_its_2015_2016_certificates(interop_dir):
    """The sandbox's rule (00:00:00Z to 23:59:59Z the day before the anniversary) is what Z1 and every
    Organisation Certificate it issued in 2015 and 2016 carry. (The 2025 re-issues end on the anniversary
    itself, and two 2023 ones start at a time of day: the DCC is not consistent, the profile is config.)"""
    paths = [p for p in interop_files(interop_dir, "org") if "-2015-" in p.name or "-2016-" in p.name]
    assert len(paths) >= 20
    for path in paths:
        not_before, not_after = times(load(path))
        assert _midnight_to_last_second(not_before.native, not_after.native, 10), path.name
    not_before, not_after = times(load(interop_dir / ISSUING_OCA))
    assert _midnight_to_last_second(not_before.native, not_after.native, 25)


@pytest.mark.parametrize(("ours", "theirs"), DEVICE_PAIRS)
def test_device_validity_is_midnight_to_generalized_99991231235959(issued, interop_dir, ours, theirs):
    mine, dcc = issued[ours], load(interop_dir / theirs)
    for cert in (mine, dcc):
        not_before, _ = times(cert)
        assert not_before.chosen.tag == UTC_TIME
        assert not_before.native.time() == dt.time(0, 0, 0)
    assert times(mine)[1].dump() == times(dcc)[1].dump()  # GeneralizedTime 99991231235959Z, byte for byte
    assert times(mine)[1].chosen.tag == GENERALIZED_TIME


@pytest.mark.parametrize(("ours", "theirs"), ORG_PAIRS)
def test_organisation_subject_order_and_string_types_match_the_dcc(issued, interop_dir, ours, theirs):
    mine, dcc = issued[ours], load(interop_dir / theirs)
    shape = rdn_shape(tbs(mine)["subject"])
    assert shape == rdn_shape(tbs(dcc)["subject"])
    with_cn = [(CN, UTF8_STRING, 1), (OU, UTF8_STRING, 1), (UID, BIT_STRING, 1)]
    assert shape in (with_cn, with_cn[1:])
    for cert in (mine, dcc):
        uid = next(a["value"] for rdn in tbs(cert)["subject"].chosen for a in rdn if a["type"].dotted == UID)
        assert len(uid.contents) == 9 and uid.contents[0] == 0  # 64 bits, 0 unused bits


def test_organisation_subject_carries_role_entity_and_trading_name(issued):
    values = rdn_values(tbs(issued["org_ds_cn"])["subject"])
    assert values == [b"GITTESTSUPPLIER", b"02", b"\x00" + craft.SUPPLIER.value]
    assert rdn_values(tbs(issued["org_ka_04"])["subject"]) == [b"04", bytes.fromhex("0090B3D51F30000002")]


@pytest.mark.parametrize(("ours", "theirs"), DEVICE_PAIRS)
def test_device_subject_is_the_empty_name(issued, interop_dir, ours, theirs):
    for cert in (issued[ours], load(interop_dir / theirs)):
        assert tbs(cert)["subject"].dump() == b"\x30\x00"


@pytest.mark.parametrize(("ours", "theirs"), ALL_PAIRS)
def test_extensions_in_the_dcc_order_with_the_dcc_criticality(issued, interop_dir, ours, theirs):
    mine = extensions(issued[ours])
    assert mine == extensions(load(interop_dir / theirs))
    expected = ([(KEY_USAGE, True), (SKI, False), (SAN, True), (POLICIES, True), (AKI, False)]
                if ours.startswith("device") else [(KEY_USAGE, True), (SKI, False), (POLICIES, True), (AKI, False)])
    assert mine == expected


@pytest.mark.parametrize(("ours", "theirs"), ALL_PAIRS)
def test_key_usage_der_is_byte_identical_to_the_dcc_certificate_of_the_same_usage(issued, interop_dir, ours, theirs):
    mine, dcc = extension_value(issued[ours], KEY_USAGE), extension_value(load(interop_dir / theirs), KEY_USAGE)
    assert mine == dcc
    assert mine == (bytes.fromhex("03020308") if "_ka" in ours else bytes.fromhex("03020780"))


@pytest.mark.parametrize("ours", [name for name, _ in ALL_PAIRS])
def test_ski_is_eight_octets_by_method_2_and_aki_is_the_issuers_key_id_only(issued, ours):
    cert = issued[ours]
    ski = ax.ParsableOctetString.load(extension_value(cert, SKI)).native
    assert len(ski) == 8 and ski[0] >> 4 == 0x4  # 0100 then 60 bits
    public_key = cx.load_der_x509_certificate(cert.dump()).public_key()
    assert ski == subject_key_identifier(public_key)  # type: ignore[arg-type]
    aki = ax.AuthorityKeyIdentifier.load(extension_value(cert, AKI))
    assert aki["authority_cert_issuer"].native is None and aki["authority_cert_serial_number"].native is None
    issuer = issued["issuing_dca" if ours.startswith("device") else "issuing_oca"]
    assert aki["key_identifier"].native == issuer.key_identifier
    assert len(aki["key_identifier"].native) == 8
    assert extension_value(cert, AKI) == b"\x30\x0a\x80\x08" + issuer.key_identifier


def test_subject_key_identifier_reproduces_every_dcc_ski(interop_dir):
    """Proves the method: the sandbox's SKI function gives exactly the SKI of every DCC certificate."""
    paths = interop_files(interop_dir, "org", "device", "ca")
    certificates = [c for p in paths for c in cx.load_pem_x509_certificates(p.read_bytes())]
    bundle = interop_dir / "device" / "rtds-E357-all-400-device-certs.pem"
    if bundle.exists():
        certificates += cx.load_pem_x509_certificates(bundle.read_bytes())
    assert len(certificates) >= 40
    for certificate in certificates:
        expected = certificate.extensions.get_extension_for_class(cx.SubjectKeyIdentifier).value.digest
        assert subject_key_identifier(certificate.public_key()) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("ours", "theirs"), ALL_PAIRS)
def test_aki_of_the_dcc_is_key_identifier_only_as_well(interop_dir, ours, theirs):
    value = extension_value(load(interop_dir / theirs), AKI)
    assert value[:4] == b"\x30\x0a\x80\x08" and len(value) == 12


@pytest.mark.parametrize(("ours", "theirs"), ALL_PAIRS)
def test_certificate_policies_der_is_byte_identical_to_the_dcc(issued, interop_dir, ours, theirs):
    # the test environment uses the DCC's test policy OIDs, so the whole extension value must match
    mine = extension_value(issued[ours], POLICIES)
    assert mine == extension_value(load(interop_dir / theirs), POLICIES)
    policies = ax.CertificatePolicies.load(mine)
    assert len(policies) == 1 and policies[0]["policy_qualifiers"].native is None


@pytest.mark.parametrize(("ours", "theirs"), DEVICE_PAIRS)
def test_device_san_der_is_byte_identical_to_the_dcc_for_the_same_device_id(issued, interop_dir, ours, theirs):
    mine, dcc = extension_value(issued[ours], SAN), extension_value(load(interop_dir / theirs), SAN)
    assert mine == dcc
    # and the layout holds for any Device ID: only the last 8 octets (hwSerialNum) carry it
    assert mine[:-8] == dcc[:-8] and mine[-8:] == DEVICE_ID.value


def test_device_san_layout_for_another_device_id(issued, interop_dir, instance):
    other = Eui64.parse("00DB1234567890A0")
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    cert = from_der(service.issue_from_csr(craft.device(craft.p256("i"), names=[craft.hmn(other.value)]),
                                           channel="operator", requested_by="test").der)
    dcc = load(interop_dir / "device" / "device-E357-00db1234567890a0-ds-30398236.pem")
    assert extension_value(cert, SAN) == extension_value(dcc, SAN)


# --- CA certificates ---------------------------------------------------------------------------------

def test_issuing_oca_matches_z1_in_shape(issued, interop_dir):
    mine, z1 = issued["issuing_oca"], load(interop_dir / ISSUING_OCA)
    assert extensions(mine) == extensions(z1) == [
        (KEY_USAGE, True), (BASIC_CONSTRAINTS, True), (POLICIES, True), (SKI, False), (AKI, False)]
    for oid in (KEY_USAGE, BASIC_CONSTRAINTS, POLICIES):
        assert extension_value(mine, oid) == extension_value(z1, oid), oid
    assert extension_value(mine, BASIC_CONSTRAINTS) == bytes.fromhex("30060101FF020100")  # cA, pathLen 0
    assert extension_value(mine, KEY_USAGE) == bytes.fromhex("03020106")  # keyCertSign, cRLSign
    shape = [(OU, PRINTABLE_STRING, 1), (CN, PRINTABLE_STRING, 1)]
    for cert in (mine, z1):
        assert rdn_shape(tbs(cert)["subject"]) == rdn_shape(tbs(cert)["issuer"]) == shape
        assert tbs(cert)["signature"].dump() == cert["signature_algorithm"].dump() == ECDSA_SHA256_DER
        assert len(serial_octets(cert)) == 16 and 0x01 <= serial_octets(cert)[0] <= 0x7F
    assert rdn_values(tbs(mine)["subject"]) == [b"07", b"S1"]
    assert rdn_values(tbs(mine)["issuer"]) == [b"00", b"SA"]
    assert tbs(mine)["issuer"].dump() == tbs(issued["root_oca"])["subject"].dump()


@pytest.mark.parametrize("name", ["root_oca", "issuing_oca", "root_dca", "issuing_dca"])
def test_ca_validity_uses_utctime_until_2049_then_generalized_time(issued, name):
    """Documented difference: Z1 ends in 2040 (UTCTime); a sandbox CA made now ends after 2049, and RFC
    5280 then requires GeneralizedTime. The span is the profile's, midnight to 23:59:59."""
    years = {"root_oca": 30, "issuing_oca": 25, "root_dca": 30, "issuing_dca": 25}[name]
    not_before, not_after = times(issued[name])
    assert not_before.chosen.tag == UTC_TIME
    assert not_after.chosen.tag == (UTC_TIME if not_after.native.year < 2050 else GENERALIZED_TIME)
    assert _midnight_to_last_second(not_before.native, not_after.native, years)


def test_root_oca_is_self_signed_with_contingency_extension_and_no_aki(issued):
    root = issued["root_oca"]
    assert tbs(root)["issuer"].dump() == tbs(root)["subject"].dump()
    assert rdn_values(tbs(root)["subject"]) == [b"00", b"SA"]
    assert extensions(root) == [(KEY_USAGE, True), (BASIC_CONSTRAINTS, True), (POLICIES, True), (SKI, False),
                                (WRAPPED_APEX, False)]
    cx.load_der_x509_certificate(root.dump()).verify_directly_issued_by(cx.load_der_x509_certificate(root.dump()))


def test_device_cas_have_cn_only_and_issuing_dca_pathlen_zero(issued):
    root, issuing = issued["root_dca"], issued["issuing_dca"]
    assert rdn_shape(tbs(root)["subject"]) == rdn_shape(tbs(issuing)["subject"]) == [(CN, PRINTABLE_STRING, 1)]
    assert rdn_values(tbs(root)["subject"]) == [b"SD"] and rdn_values(tbs(issuing)["subject"]) == [b"S357"]
    assert tbs(issuing)["issuer"].dump() == tbs(root)["subject"].dump()
    assert extension_value(issuing, BASIC_CONSTRAINTS) == bytes.fromhex("30060101FF020100")
    assert extensions(issuing) == [(KEY_USAGE, True), (BASIC_CONSTRAINTS, True), (POLICIES, True), (SKI, False),
                                   (AKI, False)]
    policies = ax.CertificatePolicies.load(extension_value(issuing, POLICIES))
    assert [p["policy_identifier"].dotted for p in policies] == ["1.2.826.0.1.1800000.1.2.1.4"]
