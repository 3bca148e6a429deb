"""RTDS hex files, the export with its certificates, the ``smki gbcs`` commands, and damaged real vectors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smki.gbcs import CODES, GbcsError, decode, export, from_hex, read_message_file, to_hex
from smki.gbcs.cli import gbcs
from tests.gbcs.conftest import ACB_KA_KEY

SUPPLIER_COMMAND = "6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
SUPPLIER_DS = "org/org-Z1-supplier-90b3d51f30010000-ds-2015-4fbc5252.pem"


def test_hex_reads_with_whitespace_and_writes_in_the_rtds_layout(gbcs_dir: Path, tmp_path: Path) -> None:
    text = (gbcs_dir / SUPPLIER_COMMAND).read_text()
    octets = from_hex(text)
    assert from_hex(" \n".join(text[i:i + 32] for i in range(0, len(text), 32))) == octets
    assert to_hex(octets) == text  # upper case, no separators, no line end: the vectors' own layout
    raw = tmp_path / "raw.bin"
    raw.write_bytes(octets)
    assert read_message_file(raw) == octets


def test_export_writes_the_message_and_the_certificates_that_verify_it(gbcs_dir: Path, interop_dir: Path,
                                                                        tmp_path: Path) -> None:
    octets = from_hex((gbcs_dir / SUPPLIER_COMMAND).read_text())
    signer = x509.load_pem_x509_certificate((interop_dir / SUPPLIER_DS).read_bytes())
    device_ka = next((interop_dir / "device").glob("device-E357-00db1234567890a0-ka-*.pem"))
    other = x509.load_pem_x509_certificate(device_ka.read_bytes())
    message_path, certificates_path = export(decode(octets), tmp_path / "out", "DRILL_COMMAND", [other, signer])
    assert message_path.name == "DRILL_COMMAND_GBCS.HEX" and message_path.read_text() == to_hex(octets)
    assert certificates_path is not None
    bundle = certificates_path.read_text()
    assert bundle.index("# supporting:") < bundle.index("# signer: 2.5.4.45=#0090b3d51f30010000")
    assert x509.load_pem_x509_certificates(bundle.encode()) == [other, signer]


def test_export_refuses_what_is_not_a_message(tmp_path: Path) -> None:
    try:
        export(b"\xdf\x09", tmp_path, "X")
    except GbcsError as error:
        assert error.code == "GB:E001"
    else:
        raise AssertionError("a truncated message was exported")
    assert not list(tmp_path.iterdir())


def test_cli_decode_prints_json_and_checks_signature_and_mac(gbcs_dir: Path, interop_dir: Path) -> None:
    device_ka = next((interop_dir / "device").glob("device-E357-00db1234567890a0-ka-*.pem"))
    result = CliRunner().invoke(gbcs, [
        "decode", str(gbcs_dir / SUPPLIER_COMMAND), "--cert", str(interop_dir / SUPPLIER_DS),
        "--mac-key", str(interop_dir / "test-private-keys" / ACB_KA_KEY), "--mac-peer", str(device_ka)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["apdu"] == "generalCiphering" and body["macVerified"] is True
    assert body["signatureVerifiedBy"].startswith("2.5.4.45=#0090b3d51f30010000")
    assert body["content"]["payload"]["control"]["mode"] == "supplierBySupplier"


def test_cli_refuses_with_the_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.HEX"
    bad.write_text("DF09ZZ")
    result = CliRunner().invoke(gbcs, ["decode", str(bad)])
    assert result.exit_code == 2 and "error GB:E018" in result.output


def test_cli_export(gbcs_dir: Path, interop_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(gbcs, ["export", str(gbcs_dir / SUPPLIER_COMMAND), "--out", str(tmp_path),
                                       "--name", "COPY", "--cert", str(interop_dir / SUPPLIER_DS)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "COPY_GBCS.HEX").read_text() == (gbcs_dir / SUPPLIER_COMMAND).read_text()
    assert (tmp_path / "COPY_CERTS.PEM").read_text().startswith("# signer:")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_vectors_decode_or_are_refused_with_a_code(vectors: dict[str, bytes], data: st.DataObject) -> None:
    octets = bytearray(vectors[data.draw(st.sampled_from(sorted(vectors)))])
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        where = data.draw(st.integers(min_value=0, max_value=len(octets) - 1))
        action = data.draw(st.sampled_from(("flip", "cut", "insert")))
        if action == "flip":
            octets[where] ^= data.draw(st.integers(min_value=1, max_value=255))
        elif action == "cut":
            del octets[where:where + data.draw(st.integers(min_value=1, max_value=8))]
        else:
            octets[where:where] = data.draw(st.binary(min_size=1, max_size=8))
        if not octets:
            break
    try:
        decode(bytes(octets))
    except GbcsError as error:
        assert error.code in CODES
