"""``smki lint`` as a user runs it: output lines, JSON, exit statuses, coded input errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from smki.lint.cli import lint_command

Z1 = "ca/oca-ZA-to-Z1-71872bdb.pem"
KU_NEGATIVE = "negative/device-E357-00db1234567890a0-keyusage-nonRepudiation-30398236.pem"


def run(*args: str):
    # the command itself, not the ``smki`` group, so that other areas' registrations cannot break these tests
    return CliRunner().invoke(lint_command, list(args), env={"SMKI_ENVIRONMENT": "test"})


def test_clean_certificates_exit_0_and_print_no_findings(interop_dir):
    recovery = interop_dir / "org" / "org-Z1-recovery-90b3d51f30000001-ds-2015-469afec2.pem"
    result = run(str(interop_dir / Z1), str(recovery))
    assert result.exit_code == 0, result.output
    assert "ERROR" not in result.output


def test_findings_are_one_line_each_with_file_severity_and_code_and_exit_1(interop_dir):
    path = interop_dir / KU_NEGATIVE
    result = run(str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}: ERROR LN:KU01 keyUsage is contentCommitment; must be exactly one of digitalSignature or keyAgreement"]


def test_bundle_members_are_named_by_index(interop_dir, tmp_path):
    bundle = tmp_path / "bundle.pem"
    first, second = (interop_dir / Z1).read_text(), (interop_dir / KU_NEGATIVE).read_text()
    bundle.write_text(f"# first\n{first}# second\n{second}")
    result = run(str(bundle))
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{bundle}#2: ERROR LN:KU01 ")


def test_json_output_for_tools(interop_dir):
    result = run("--format", "json", str(interop_dir / KU_NEGATIVE))
    document = json.loads(result.stdout)
    [certificate] = document["certificates"]
    assert certificate["profile"] == "device"
    assert certificate["findings"][0]["code"] == "LN:KU01"
    assert certificate["findings"][0]["severity"] == "error"
    assert document["summary"] == {"certificates": 1, "errors": 1, "warnings": 0}


def test_profile_option_overrides_detection(interop_dir):
    result = run("--profile", "issuing_oca", "--format", "json", str(interop_dir / KU_NEGATIVE))
    codes = {f["code"] for f in json.loads(result.stdout)["certificates"][0]["findings"]}
    assert {"LN:KU02", "LN:EXT03", "LN:EXT02", "LN:SUB01"} <= codes  # judged as an Issuing OCA, not a Device
    assert result.exit_code == 1


def test_chain_and_at_validate_the_path(interop_dir):
    path = str(interop_dir / "org" / "org-Z1-supplier-90b3d51f30010000-ds-2015-4fbc5252.pem")
    assert run(path, "--chain", str(interop_dir / Z1), "--at", "2016-02-01").exit_code == 0
    expired = run(path, "--chain", str(interop_dir / Z1), "--at", "2026-01-01T00:00:00Z")
    assert expired.exit_code == 1
    assert "LN:PTH03" in expired.stdout


def test_unusable_input_exits_2_with_a_coded_error_and_no_traceback(interop_dir, tmp_path):
    missing = run(str(tmp_path / "nope.pem"))
    assert missing.exit_code == 2
    assert "error LN:IN01" in missing.stderr and "Traceback" not in missing.output
    text = tmp_path / "notes.txt"
    text.write_text("not a certificate")
    assert "error LN:IN02" in run(str(text)).stderr
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n")
    assert run(str(broken)).exit_code == 2 and "error LN:IN03" in run(str(broken)).stderr
    bad_time = run(str(interop_dir / Z1), "--at", "yesterday")
    assert bad_time.exit_code == 2 and "error LN:IN04" in bad_time.stderr
    bad_chain = run(str(interop_dir / Z1), "--chain", str(tmp_path / "absent.pem"))
    assert bad_chain.exit_code == 2 and "error LN:IN01" in bad_chain.stderr
