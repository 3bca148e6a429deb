"""``smki demo``: a realistic population, so a new user can submit a CSR within a minute.

The DCC, a large and a small supplier, an electricity and a gas network operator, an other user and a
device manufacturer (not a Party), each Party with an SRO and AROs; an RA operator, an SMKI PMA member
and the Code Administrator. Credentials (API tokens, IKI client certificates and keys) are written to
``<instance>/demo/`` with owner-only permissions, with a sample CSR and the commands to use it. Every ARO
scoped to the Repository also gets a Repository portal user and web-service API key, made through the RA's
port to the Repository like any approved ARO's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from smki.core.eui64 import Eui64
from smki.csrgen import organisation_csr
from smki.instance import Instance
from smki.ra import audit, registry
from smki.ra.forms import repository_credentials, repository_within
from smki.ra.iki import IkiAuthority
from smki.ra.lodging import repository_holder
from smki.ra.models import Organisation
from smki.ra.population import Member, PopulationBuilder
from smki.ra.service import RegistrationAuthority

BOTH = ("organisation", "device")
# name, category, User Roles, people: (name, role, scopes)
PARTIES: list[tuple[str, str, list[str], list[tuple[str, str, tuple[str, ...]]]]] = [
    ("Northern Lights Energy plc", "large_supplier", ["IS", "GS"], [
        ("Helen Marsh", "sro", ()), ("Tom Akers", "aro", (*BOTH, "repository")), ("Priya Shah", "aro", ("device",))]),
    ("Pennine Power Co-operative Ltd", "small_supplier", ["IS"], [
        ("Gareth Lloyd", "sro", ()), ("Aisha Bello", "aro", (*BOTH, "repository"))]),
    ("Midshires Electricity Distribution plc", "electricity_network", ["ED"], [
        ("Ruth Okafor", "sro", ()), ("Ian Fraser", "aro", ("organisation", "repository"))]),
    ("Caledonian Gas Networks Ltd", "gas_network", ["GT"], [
        ("Morag Innes", "sro", ()), ("Calum Reid", "aro", ("organisation",))]),
    ("Fenland Energy Services Ltd", "other", ["OU", "RSA"], [
        ("Nadia Petrov", "sro", ()), ("Owen Hughes", "aro", ("organisation",))]),
]
DCC_NAME = "Data Communications Company (sandbox)"
MANUFACTURER = "Brightwater Meters Ltd"
STAFF = [("Rita Vance", "ra_operator"), ("Dr Alan Kerr", "pma"), ("Sophie Lane", "code_admin")]


def _write_private(path: Path, data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _email(person: str, organisation: str) -> str:
    return f"{_slug(person).replace('-', '.')}@{_slug(organisation)[:40].strip('-')}.example"


def _repository_user(ra: RegistrationAuthority, member: Member, organisation: str | None) -> dict[str, str]:
    """A Repository portal user (named by the ARO's e-mail) and API key for a Repository-scoped ARO, made
    with its audit record in one unit of work, as an approved ARO Nomination Form makes them."""
    holder = repository_holder(organisation, member.person_id)
    username = _email(member.name, organisation or "sandbox")

    def work(session: Session) -> dict[str, str]:
        audit.append(session, actor="ra:demo", action="credential.issued", subject=f"person:{member.person_id}",
                     detail={"kind": "repository", "holder": holder})
        return repository_credentials(repository_within(session), holder, username)
    return audit.audited(ra.database, work)


def _pma_reader(ra: RegistrationAuthority, member: Member) -> dict[str, str]:
    """A Repository portal user holding the ``smki_pma`` role for the SMKI PMA member: the reader of the
    documents lodged for the Panel and the PMA alone, such as the full CSR variance report (L8.10)."""
    import secrets

    holder = repository_holder(None, member.person_id)
    username = _email(member.name, "smki-pma")
    password = secrets.token_urlsafe(18)

    def work(session: Session) -> dict[str, str]:
        audit.append(session, actor="ra:demo", action="credential.issued", subject=f"person:{member.person_id}",
                     detail={"kind": "repository", "holder": holder, "roles": ["smki_pma"]})
        # the RA port creates ARO logins; a role-holding reader is made on the Repository access it wraps
        repository_within(session).access.create_user(username, password, holder, roles=("smki_pma",))
        return {"repository_username": username, "repository_password": password, "repository_roles": "smki_pma"}
    return audit.audited(ra.database, work)


def seed_demo(instance: Instance) -> Path:
    folder = instance.settings.instance_dir / "demo"
    ra = RegistrationAuthority(instance)
    with ra.database.session() as session:
        present = session.execute(select(Organisation.id).where(Organisation.name == DCC_NAME)).first()
    if present and (folder / "credentials.json").exists():
        return folder
    if present:
        raise registry.RegistryError("WF:DEMO1", f"a demo population exists but {folder}/credentials.json is "
                                     "missing; start from a fresh instance to seed again.")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    build = PopulationBuilder(ra, actor="ra:demo")
    iki = IkiAuthority(instance, ra.settings)
    people: list[dict[str, Any]] = []

    def record(member: Member, organisation: str | None, scopes: tuple[str, ...] = ()) -> None:
        entry: dict[str, Any] = {"name": member.name, "role": member.role, "organisation": organisation,
                                 "organisation_id": member.organisation_id, "person_id": member.person_id,
                                 "api_token": member.token}
        if "repository" in scopes:
            entry.update(_repository_user(ra, member, organisation))
        if member.role == "pma":
            entry.update(_pma_reader(ra, member))
        if member.role == "aro":
            def issue(session):
                return iki.issue_person_certificate(session, person_id=member.person_id, name=member.name,
                                                    organisation=organisation)
            certificate, key = audit.audited(ra.database, issue)
            stem = folder / f"{_slug(member.name)}"
            _write_private(stem.with_suffix(".crt"), certificate.public_bytes(serialization.Encoding.PEM))
            _write_private(stem.with_suffix(".key"), key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            entry["client_certificate"] = str(stem.with_suffix(".crt"))
            entry["client_key"] = str(stem.with_suffix(".key"))
        people.append(entry)

    dcc_ids = instance.policies.environment.dcc_entity_identifiers
    dcc = build.party(DCC_NAME, "dcc", [("DCC", eui.hex) for eui in dcc_ids.values()])
    parties: list[dict[str, Any]] = [{"name": DCC_NAME, "id": dcc, "category": "dcc",
                                      "user_ids": {k: v.hex for k, v in dcc_ids.items()}}]
    record(build.member(dcc, "Jane Porter", "sro"), DCC_NAME)
    dcc_aro = (*BOTH, "repository")
    record(build.member(dcc, "Mark Ellis", "aro", scopes=dcc_aro, email=_email("Mark Ellis", DCC_NAME)), DCC_NAME,
           dcc_aro)
    for name, category, roles, members in PARTIES:
        party = build.party(name, category, [(role, None) for role in roles])
        with ra.database.session() as session:
            user_ids = {u.user_role: u.eui64 for u in registry.user_ids(session, party)}
        parties.append({"name": name, "id": party, "category": category, "user_ids": user_ids})
        for person, role, scopes in members:
            record(build.member(party, person, role, scopes=scopes, email=_email(person, name)), name, scopes)
    manufacturer = build.manufacturer(MANUFACTURER)
    parties.append({"name": MANUFACTURER, "id": manufacturer, "category": "manufacturer", "user_ids": {}})
    for person, role in STAFF:
        record(build.member(None, person, role), None)

    # a ready-made Organisation CSR for the large supplier's first ARO
    supplier = parties[1]
    key = ec.generate_private_key(ec.SECP256R1())
    csr = organisation_csr(key, "02", Eui64.parse(supplier["user_ids"]["IS"]), "digitalSignature",
                           trading_name="Northern Lights Energy")
    _write_private(folder / "sample-supplier-ds.csr", csr.public_bytes(serialization.Encoding.PEM))
    _write_private(folder / "sample-supplier-ds.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    _write_private(folder / "iki-ca.pem", iki.certificate.public_bytes(serialization.Encoding.PEM))
    _write_private(folder / "credentials.json", json.dumps({"parties": parties, "people": people}, indent=2))
    aro = next(p for p in people if p["name"] == "Tom Akers")
    sro = next(p for p in people if p["name"] == "Helen Marsh")
    operator = next(p for p in people if p["role"] == "ra_operator")
    pma = next(p for p in people if p["role"] == "pma")
    counts = f"{len(parties)} organisations, {len(people)} people"
    _write_private(folder / "README.txt", f"""SMKI sandbox demo population ({counts})

Credentials of every SRO, ARO and RA operator: {folder / 'credentials.json'}
AROs' IKI client certificates and keys (for mutual TLS): {folder}/<name>.crt and .key

Submit an Organisation CSR as Tom Akers, ARO of Northern Lights Energy plc (User ID as IS:
{supplier['user_ids']['IS']}), with the service running (make run):

  curl -s -X POST http://127.0.0.1:8080/api/v1/ra/csr/organisation \\
       -H 'Authorization: Bearer {aro['api_token']}' \\
       -H 'Content-Type: application/pkcs10' --data-binary @{folder / 'sample-supplier-ds.csr'}

or sign in to the portal at http://127.0.0.1:8080/portal/ with that token and paste the CSR.

Repository portal, http://127.0.0.1:8080/repository/login, as Tom Akers (an ARO scoped to the Repository):
  username: {aro['repository_username']}
  password: {aro['repository_password']}
Repository web service API key (header X-API-Key): {aro['repository_api_key']}
Repository portal as {pma['name']} of the SMKI PMA (role smki_pma: also reads the documents lodged for the
Panel and the PMA alone, such as the full CSR variance report):
  username: {pma['repository_username']}
  password: {pma['repository_password']}
SRO (Helen Marsh) token: {sro['api_token']}
RA operator (Rita Vance) token: {operator['api_token']}
API description: http://127.0.0.1:8080/api/v1/ra/openapi.json
""")
    return folder
