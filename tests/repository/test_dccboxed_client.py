"""Smart DCC's own DCC Boxed client, unchanged, against the sandbox's Appendix O service.

``@smartdcc/dccboxed-keystore`` is what Parties' tooling uses to search DCC Boxed's repository. It is
installed from the npm registry (pinned) into a cache folder and driven by Node; the test skips, saying
why, when Node or the registry is unavailable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import serving

CLIENT = "@smartdcc/dccboxed-keystore@0.4.2"
SUPPLIER = "90-B3-D5-1F-30-01-00-00"
DEVICE = "00-DB-12-34-56-78-90-A0"

# search() finds serials with certificatesearch and fetches each with retrievecertificate; 402 must come
# back as an empty list and 401 as the client's "invalid search parameters" error.
SCRIPT = r"""
const cs = require('@smartdcc/dccboxed-keystore/dist/certificateSearch');
const address = process.argv[2];
const summary = (results) => results.map((r) => ({serial: r.x509.serialNumber, meta: r.meta}));
(async () => {
  const out = {};
  out.device = summary(await cs.search({q: {CertificateSubjectAltName: process.argv[4]},
                                        CertificateUsage: 'KA', CertificateStatus: 'I'}, address));
  out.supplier = summary(await cs.search({q: {CertificateSubjectName: process.argv[3]}, CertificateRole: '2',
                                          CertificateUsage: 'DS', CertificateStatus: 'I'}, address));
  out.nothing = summary(await cs.search({q: {CertificateSubjectAltName: 'AA-BB-CC-DD-EE-FF-00-11'},
                                         CertificateUsage: 'DS', CertificateStatus: 'I'}, address));
  try {
    await cs.search({q: {CertificateSubjectAltName: 'not an eui'}, CertificateUsage: 'DS',
                     CertificateStatus: 'I'}, address);
    out.invalid = 'accepted';
  } catch (e) { out.invalid = String(e.message); }
  console.log(JSON.stringify(out, (k, v) => (typeof v === 'bigint' ? v.toString(16) : v)));
})().catch((e) => { console.error(e); process.exit(1); });
"""


@pytest.fixture(scope="session")
def dccboxed_client() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("node and npm are needed to run Smart DCC's DCC Boxed client")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "smki-sandbox" / "dccboxed-keystore-0.4.2"
    if not (cache / "node_modules" / "@smartdcc" / "dccboxed-keystore").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        installed = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(cache),
                                    CLIENT], capture_output=True, text=True, timeout=300)
        if installed.returncode != 0:
            pytest.skip(f"could not install {CLIENT} from the npm registry: {installed.stderr.strip()[-300:]}")
    return cache


@pytest.fixture
def boxed_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    app.config["SMKI_DCCBOXED"] = True  # accept DCC Boxed's published default API key, as --dccboxed does
    with serving(app) as port:
        yield f"127.0.0.1:{port}"


@pytest.mark.slow
def test_smart_dcc_client_searches_and_retrieves_unchanged(dccboxed_client, boxed_server, repository,
                                                           interop_org, interop_devices, issue):
    sandbox_supplier = issue("organisation", SUPPLIER)
    repository.lodge_many([*interop_org, *interop_devices, sandbox_supplier])
    script = dccboxed_client / "search.js"
    script.write_text(SCRIPT)

    run = subprocess.run(["node", str(script), boxed_server, SUPPLIER, DEVICE], capture_output=True, text=True,
                         timeout=120, cwd=dccboxed_client)

    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    [device] = out["device"]  # the RTDS key-agreement certificate of that meter, parsed by the client
    expected = next(c for c in map(x509.load_der_x509_certificate, interop_devices)
                    if c.serial_number == int(device["serial"], 16))
    assert expected.extensions.get_extension_for_class(x509.KeyUsage).value.key_agreement
    supplier_serials = {int(r["serial"], 16) for r in out["supplier"]}
    assert x509.load_der_x509_certificate(sandbox_supplier).serial_number in supplier_serials
    assert len(supplier_serials) > 1  # the ZAZ1 supplier's in-date DS certificates come back with the sandbox's
    assert out["nothing"] == []       # 402 -> nothing found
    assert out["invalid"] == "invalid search parameters"  # 401
