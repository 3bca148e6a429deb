"""The evidence pack: per scenario the recorded requests and answers and the certificates involved, the Test
Completion Report (HTML and PDF), and a manifest signed by the sandbox's evidence signer, so that changing,
removing or adding any file makes ``smki srept verify`` fail, naming the file."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from smki.srept.cli import srept
from smki.srept.evidence import build_pack, verify_pack
from smki.srept.runs import SreptService
from tests.ra.conftest import SUPPLIER_B_IS, Population, auth, org_csr_pem
from tests.srept.conftest import NEWCOMER_IS, Newcomer, open_run


@pytest.fixture
def pack(client, ra, population: Population, newcomer: Newcomer, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    run = open_run(client, population.operator, newcomer.party)
    headers = auth(newcomer.aro)
    assert client.post("/api/v1/ra/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)},
                       headers=headers).status_code == 201
    client.post("/api/v1/ra/csr/organisation", json={"csr": org_csr_pem(SUPPLIER_B_IS)}, headers=headers)
    response = client.get(f"/api/v1/srept/runs/{run['id']}/pack", headers=auth(newcomer.sro))
    assert response.status_code == 200 and response.mimetype == "application/zip"
    path = tmp_path / "pack.zip"
    path.write_bytes(response.data)
    return path


def _rewrite(source: Path, target: Path, change: dict[str, bytes | None], add: dict[str, bytes] | None = None) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as out:
        for name in original.namelist():
            data = change.get(name, original.read(name))
            if data is not None:
                out.writestr(name, data)
        for name, data in (add or {}).items():
            out.writestr(name, data)


def test_the_pack_holds_the_evidence_and_verifies(pack: Path) -> None:
    with zipfile.ZipFile(pack) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        assert archive.read("report/completion-report.pdf").startswith(b"%PDF")
        report = archive.read("report/completion-report.html").decode()
    assert {"manifest.json", "manifest.sig", "signer.pem", "iki-ca.pem", "run.json", "interactions.json"} <= names
    assert any(n.startswith("scenarios/ORG-01/certificates/") and n.endswith(".pem") for n in names)
    assert any(n.startswith("scenarios/ORG-02/") and n.endswith("-response.json") for n in names)
    assert set(manifest["files"]) == names - {"manifest.json", "manifest.sig"}
    assert "ORG-01" in report and "not run" in report
    result = CliRunner().invoke(srept, ["verify", str(pack)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_changing_any_file_is_named(pack: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(pack) as archive:
        names = [n for n in archive.namelist() if n not in ("manifest.json", "manifest.sig")]
        contents = {n: archive.read(n) for n in names}
    for n, name in enumerate(names):
        tampered = tmp_path / f"tampered-{n}.zip"
        _rewrite(pack, tampered, {name: contents[name] + b" "})
        result = CliRunner().invoke(srept, ["verify", str(tampered)])
        assert result.exit_code == 1, name
        assert f"{name}: changed" in result.output, result.output


def test_removed_added_and_resigned_files_are_named(pack: Path, tmp_path: Path) -> None:
    removed, added, forged = tmp_path / "removed.zip", tmp_path / "added.zip", tmp_path / "forged.zip"
    _rewrite(pack, removed, {"run.json": None})
    _rewrite(pack, added, {}, {"scenarios/ORG-01/extra.txt": b"planted"})
    with zipfile.ZipFile(pack) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    manifest["files"]["run.json"] = "0" * 64  # a manifest edited to match an edit is caught by the signature
    _rewrite(pack, forged, {"manifest.json": json.dumps(manifest).encode()})
    assert "run.json: listed in the manifest but missing" in "\n".join(verify_pack(removed).problems)
    assert "scenarios/ORG-01/extra.txt: not in the manifest" in "\n".join(verify_pack(added).problems)
    assert any(p.startswith("manifest.json: its signature") for p in verify_pack(forged).problems)


def test_a_pack_is_trusted_only_under_the_sandbox_iki_ca(pack: Path, instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    own = instance.settings.instance_dir / "iki" / "ca.pem"
    assert CliRunner().invoke(srept, ["verify", str(pack), "--trust", str(own)]).exit_code == 0
    import datetime as dt

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Another CA")])
    now = dt.datetime.now(dt.UTC)
    other = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
             .sign(key, hashes.SHA256()))
    stranger = tmp_path / "other.pem"
    stranger.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    result = CliRunner().invoke(srept, ["verify", str(pack), "--trust", str(stranger)])
    assert result.exit_code == 1 and "iki-ca.pem: not the IKI CA certificate given to trust" in result.output


def test_not_a_zip_is_a_coded_refusal(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    result = CliRunner().invoke(srept, ["verify", str(junk)])
    assert result.exit_code == 2 and "FM:SRP08" in result.output


def test_the_console_builds_the_same_pack(instance, client, population: Population, newcomer: Newcomer) -> None:  # type: ignore[no-untyped-def]
    run = open_run(client, population.operator, newcomer.party)
    pack = build_pack(instance, SreptService(instance), None, run["id"])
    assert not verify_pack(io.BytesIO(pack.data)).problems
