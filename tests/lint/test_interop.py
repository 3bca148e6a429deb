"""The DCC's public test certificates: GBCS-profile ones lint clean, each deviant one gets its finding."""

from __future__ import annotations

import datetime as dt

import pytest

from smki.lint.source import read_certificates
from tests.lint.conftest import pairs

Z1 = "ca/oca-ZA-to-Z1-71872bdb.pem"
IN_2016 = dt.datetime(2016, 2, 1, tzinfo=dt.UTC)


def test_all_organisation_certificates_and_the_issuing_oca_lint_clean(interop_dir, lint_files):
    files = sorted((interop_dir / "org").glob("*.pem"))
    assert len(files) == 41
    reports = lint_files(interop_dir / Z1, *files)
    assert {r.certificate.source: r.findings for r in reports if r.findings} == {}
    assert [r.profile for r in reports] == ["issuing_oca"] + ["organisation"] * 41


def test_the_400_device_bundle_and_the_single_device_certificates_lint_clean(interop_dir, lint_files):
    bundle = interop_dir / "device" / "rtds-E357-all-400-device-certs.pem"
    assert len(read_certificates(bundle)) == 400
    reports = lint_files(bundle, *sorted((interop_dir / "device").glob("device-*.pem")))
    assert len(reports) == 406
    assert {r.certificate.label: r.findings for r in reports if r.findings} == {}
    assert {r.profile for r in reports} == {"device"}


def test_organisation_certificates_validate_against_the_issuing_oca_while_valid(interop_dir, lint_files):
    """Path validation with the Issuing OCA as partial-chain trust anchor, at a day inside each validity."""
    for path in sorted((interop_dir / "org").glob("*.pem")):
        certificate = read_certificates(path)[0].certificate
        at = certificate["tbs_certificate"]["validity"]["not_before"].native + dt.timedelta(days=1)
        [report] = lint_files(path, chain=(interop_dir / Z1,), at=at)
        assert report.findings == [], path.name


def test_an_expired_organisation_certificate_fails_path_validation_now(interop_dir, lint_files):
    path = interop_dir / "org" / "org-Z1-supplier-90b3d51f30010000-ds-2015-4fbc5252.pem"
    [report] = lint_files(path, chain=(interop_dir / Z1,))  # notAfter 2025-10-29: expired today
    assert pairs(report) == {("LN:PTH03", "path")}


# What INDEX.md says is wrong with each file, and the finding(s) that must name it.
EXPECTED = {
    "negative/device-0001-00db123456789098-ka-policies-noncritical-5d3e7b68.pem":
        {("LN:EXT04", "certificatePolicies"), ("LN:POL01", "certificatePolicies")},
    "negative/device-E357-00db1234567890a0-keyusage-nonRepudiation-30398236.pem": {("LN:KU01", "keyUsage")},
    "nonprofile/device-ACBcert-88738457002f966c-ds-fakeDevice-4df56e92.pem":
        {("LN:ISS02", "issuer"), ("LN:EXT03", "subjectKeyIdentifier"), ("LN:SAN02", "subjectAltName"),
         ("LN:POL01", "certificatePolicies")},
    "nonprofile/device-ACBcert-88738457002f966c-ka-fakeDevice-13e6e340.pem":
        {("LN:ISS02", "issuer"), ("LN:EXT03", "subjectKeyIdentifier"), ("LN:SAN02", "subjectAltName"),
         ("LN:POL01", "certificatePolicies")},
    "nonprofile/org-OB-00db123456780004-ds-OU7F-basicConstraintsEE-43f410fe.pem": {("LN:EXT02", "basicConstraints")},
    "nonprofile/org-OB-00db123456780004-ka-OU7F-basicConstraintsEE-18c5fb7f.pem": {("LN:EXT02", "basicConstraints")},
    "nonprofile/org-Z1-00db123456780004-ds-noAKI-OU87-1c063b7b.pem":
        {("LN:ISS01", "issuer"), ("LN:EXT03", "authorityKeyIdentifier"), ("LN:VAL01", "notAfter"),
         ("LN:EXT01", "extensions")},
    "nonprofile/org-Z1-90b3d51f30000002-ds-OU89-0f4889ef.pem": {("LN:ROL02", "subject")},
    "nonprofile/org-Z1-90b3d51f30000002-ds-noAKI-OU137-261e9ccc.pem":
        {("LN:ROL01", "subject"), ("LN:ISS01", "issuer"), ("LN:EXT03", "authorityKeyIdentifier"),
         ("LN:VAL01", "notAfter"), ("LN:EXT01", "extensions")},
    "nonprofile/org-Z1-90b3d51f30000002-ds-noAKI-OU89-7dac7283.pem":
        {("LN:ROL02", "subject"), ("LN:ISS01", "issuer"), ("LN:EXT03", "authorityKeyIdentifier"),
         ("LN:VAL01", "notAfter"), ("LN:EXT01", "extensions")},
    "nonprofile/org-Z1-90b3d51f30010000-ds-noAKI-OU87-14be4ad2.pem":
        {("LN:ISS01", "issuer"), ("LN:EXT03", "authorityKeyIdentifier"), ("LN:VAL01", "notAfter"),
         ("LN:EXT01", "extensions")},
    "nonprofile/org-Z1-90b3d51f30010008-ds-noAKI-225e6162.pem":
        {("LN:ISS01", "issuer"), ("LN:EXT03", "authorityKeyIdentifier"), ("LN:VAL01", "notAfter"),
         ("LN:EXT01", "extensions")},
    "nonprofile/org-Z1-90b3d51f30010008-ka-noAKI-3bdd1d54.pem":
        {("LN:ISS01", "issuer"), ("LN:EXT03", "authorityKeyIdentifier"), ("LN:VAL01", "notAfter"),
         ("LN:EXT01", "extensions")},
    "nonprofile/org-Z1-90b3d51f30020000-ds-noAKI-OU87-1ecc6ed4.pem":
        {("LN:ISS01", "issuer"), ("LN:EXT03", "authorityKeyIdentifier"), ("LN:VAL01", "notAfter"),
         ("LN:EXT01", "extensions")},
    "nonprofile/org-Z99-90b3d51f30010009-ds-OU7F-173cfbf0.pem":
        {("LN:ALG02", "signature"), ("LN:ALG02", "signatureAlgorithm"), ("LN:ISS01", "issuer"),
         ("LN:EXT01", "extensions")},
    "nonprofile/org-Z99-90b3d51f30010009-ka-OU7F-6c274b2f.pem":
        {("LN:ALG02", "signature"), ("LN:ALG02", "signatureAlgorithm"), ("LN:ISS01", "issuer"),
         ("LN:EXT01", "extensions")},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_deviant_file_gets_exactly_its_findings(interop_dir, lint_files, name):
    [report] = lint_files(interop_dir / name)
    assert pairs(report) == EXPECTED[name]
    assert report.errors


def test_every_file_in_negative_and_nonprofile_is_covered(interop_dir):
    on_disk = {f"{p.parent.name}/{p.name}" for d in ("negative", "nonprofile") for p in (interop_dir / d).glob("*.pem")}
    covered = set(EXPECTED) | {
        "negative/oca-ZA-to-Z1-corrupted-signature-71872bdb.pem",                 # see the two tests below
        "negative/org-unknownOCA-Z2-supplier-90b3d51f30010000-ka-56bad381.pem",  # flagged with --chain
    }
    assert on_disk == covered


def test_unknown_issuer_z2_is_structurally_fine_but_has_no_path_to_z1(interop_dir, lint_files):
    path = interop_dir / "negative" / "org-unknownOCA-Z2-supplier-90b3d51f30010000-ka-56bad381.pem"
    [alone] = lint_files(path)
    assert alone.findings == []  # nothing in the certificate itself says Z2 is not an SMKI CA
    [chained] = lint_files(path, chain=(interop_dir / Z1,), at=IN_2016)
    assert pairs(chained) == {("LN:PTH01", "path")}


def test_corrupted_oca_signature_is_invisible_alone_and_a_duplicate_next_to_the_genuine_copy(interop_dir, lint_files):
    """Only the Root OCA (ZA) key, which is not public, can show the signature is bad. Alone, the file is
    byte for byte the genuine Issuing OCA but for one signature octet, so the structure lints clean. Given
    the genuine Z1 as trust anchor, the linter sees a second, different certificate with Z1's issuer and
    serial (RFC 5280 4.1.2.2), and the path cannot reach ZA."""
    corrupted = interop_dir / "negative" / "oca-ZA-to-Z1-corrupted-signature-71872bdb.pem"
    [alone] = lint_files(corrupted)
    assert alone.findings == []
    [chained] = lint_files(corrupted, chain=(interop_dir / Z1,), at=IN_2016)
    assert pairs(chained) == {("LN:DUP01", "serialNumber"), ("LN:PTH01", "path")}
    assert "identical tbsCertificate, different signature" in chained.findings[0].message


def test_the_ou89_certificate_verifies_against_z1_so_the_role_is_its_only_finding(interop_dir, lint_files):
    path = interop_dir / "nonprofile" / "org-Z1-90b3d51f30000002-ds-OU89-0f4889ef.pem"
    [report] = lint_files(path, chain=(interop_dir / Z1,), at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert pairs(report) == {("LN:ROL02", "subject")}


def test_dcc_boxed_helper_certificates_fail_strict_path_validation(interop_dir, lint_files):
    """Signed by another key under the name Z1 and without AKI: OpenSSL's X509_STRICT stops at the AKI."""
    path = interop_dir / "nonprofile" / "org-Z1-90b3d51f30010008-ds-noAKI-225e6162.pem"
    [report] = lint_files(path, chain=(interop_dir / Z1,), at=dt.datetime(2019, 1, 1, tzinfo=dt.UTC))
    assert ("LN:PTH07", "path") in pairs(report)
    assert "Authority Key Identifier" in next(f.message for f in report.findings if f.code == "LN:PTH07")
