"""A drill world: the sandbox a drill runs in, never the host's own hierarchy or Parties.

A fresh :class:`~smki.instance.Instance` under ``<host instance>/drills/<run id>/`` with its own key stores, CA
hierarchy (``smki.bootstrap.initialise``), custody and database (a SQLite file in that folder when the host is on
SQLite; on PostgreSQL the host's database with a schema of its own). It is populated as ``smki demo`` populates
the sandbox (the same Party names, which ``policies/estate.yaml`` marks as test Parties whose Organisation keys
the sandbox may hold): the DCC, two suppliers, two network operators, an ARO of each, an SMKI PMA member, and
five Key Custodians from two Parties whose passphrases derive from the drill's seed. The Recovery and
Contingency keys are taken into custody, the test Parties' Organisation Certificates issued, and an estate of
devices built in this process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, text

from smki.bootstrap import initialise
from smki.core.config import Settings
from smki.core.db import engine_for, normalise_url
from smki.estate.service import EstateService
from smki.estate.testkeys import TestKeyStore
from smki.instance import Instance
from smki.ra.demo import DCC_NAME, PARTIES
from smki.ra.identity import Principal
from smki.ra.population import PopulationBuilder
from smki.ra.service import RegistrationAuthority
from smki.recovery import carrier
from smki.recovery.custody import Custodian, IssuedShare
from smki.recovery.intake import take_into_custody

POPULATION_FILE = "population.json"
ACTOR = "drill:population"
# Key Custodians: three of the DCC, two of the large supplier (custody.yaml asks for two Parties at least).
CUSTODIANS = [(DCC_NAME, "Custodian DCC One"), (DCC_NAME, "Custodian DCC Two"), (DCC_NAME, "Custodian DCC Three"),
              (PARTIES[0][0], "Custodian NLE One"), (PARTIES[0][0], "Custodian NLE Two")]
# The Parties of a drill, as smki demo makes them, by category (the scenario files name Parties by category).
DRILL_PARTIES = [(name, category, roles) for name, category, roles, _people in PARTIES if category != "other"]


def passphrase(seed: int, key_name: str, generation: int, appointment_id: int) -> str:
    """A custodian's passphrase for one custody generation, from the drill's seed: the drill is repeatable, and
    a passphrase is never stored."""
    digest = hashlib.sha256(f"smki-drill:{seed}:{key_name}:{generation}:{appointment_id}".encode()).hexdigest()
    return f"drill-{digest[:24]}"


def world_location(host: Instance, run_id: int) -> tuple[Path, str | None]:
    """The world's folder, and its PostgreSQL schema when the host is not on SQLite (the host's database URL,
    credentials included, is never stored: the world's is made from it when opened)."""
    directory = host.settings.instance_dir / "drills" / str(run_id)
    if host.settings.database_url.startswith("sqlite"):
        return directory, None
    return directory, f"drill_{run_id}_{uuid.uuid4().hex[:8]}"


def world_url(host: Instance, directory: Path, schema: str | None) -> str:
    if schema is None:
        return f"sqlite:///{directory / 'world.db'}"
    parsed = make_url(normalise_url(host.settings.database_url))
    return parsed.set(query={**parsed.query, "options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


def _admin(world: str) -> Engine:
    parsed = make_url(world)
    return create_engine(parsed.set(query={k: v for k, v in parsed.query.items() if k != "options"}),
                         isolation_level="AUTOCOMMIT")


def create_schema(world: str, schema: str) -> None:
    admin = _admin(world)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        admin.dispose()


def drop_schema(world: str, schema: str) -> None:
    """Discard a PostgreSQL world's schema (its folder is the caller's to remove)."""
    engine_for(world).dispose()
    admin = _admin(world)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


@dataclass(frozen=True)
class Population:
    """Who is who in the world (tokens of test people: the world is test material, kept owner-only)."""

    parties: dict[str, dict[str, Any]]     # category -> {"id", "name", "aro_token"}
    pma_token: str
    custodians: list[dict[str, Any]]       # {"appointment_id", "name", "party"}

    def party(self, category: str) -> dict[str, Any]:
        return self.parties[category]

    def party_name(self, party_id: int | None) -> str | None:
        return next((p["name"] for p in self.parties.values() if p["id"] == party_id), None)

    def category_of(self, party_id: int) -> str | None:
        return next((c for c, p in self.parties.items() if p["id"] == party_id), None)


class World:
    """An existing drill world, opened."""

    def __init__(self, host: Instance, directory: Path, schema: str | None, seed: int) -> None:
        self.host = host
        self.directory = directory
        self.seed = seed
        self.schema = schema
        settings = Settings(directory, world_url(host, directory, schema), host.settings.policies_dir,
                            host.settings.environment, keystore_passphrase=host.settings.keystore_passphrase)
        self.instance = Instance(settings)
        self.artefacts = directory / "artefacts"
        self.custodian_dir = directory / "custodians"

    @cached_property
    def ra(self) -> RegistrationAuthority:
        return RegistrationAuthority(self.instance)

    @property
    def population(self) -> Population:
        data = json.loads((self.directory / POPULATION_FILE).read_text(encoding="utf-8"))
        return Population(data["parties"], data["pma_token"], data["custodians"])

    def principal(self, token: str) -> Principal:
        return self.ra.authenticate_token(token)

    def custodians(self, key_name: str, generation: int) -> list[Custodian]:
        return [Custodian(c["appointment_id"], passphrase(self.seed, key_name, generation, c["appointment_id"]))
                for c in self.population.custodians]

    def keep_shares(self, key_name: str, generation: int, shares: Sequence[IssuedShare]) -> list[Path]:
        """The sealed shares as the custodians carry them (safe on disk: each opens only with its passphrase)."""
        return [carrier.write(self.custodian_dir, key_name, generation, share) for share in shares]

    def share_file(self, key_name: str, generation: int, appointment_id: int) -> Path:
        return self.custodian_dir / f"{key_name}-g{generation}-custodian-{appointment_id}.share"

    # --- making it ------------------------------------------------------------------------------------

    def build(self, devices: int, types: str | None, *, run_label: str) -> dict[str, Any]:
        """Initialise, populate, take the keys into custody and build the estate; returns what was made."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.artefacts.mkdir(exist_ok=True)
        if self.schema is not None:
            create_schema(self.instance.settings.database_url, self.schema)
        initialise(self.instance)
        population = self._populate()
        TestKeyStore(self.instance).issue_test_credentials(requested_by=f"{run_label}: test Parties")
        for key_name in ("recovery", "contingency"):
            shares = take_into_custody(self.instance, key_name, self.custodians(key_name, 1), actor=ACTOR)
            self.keep_shares(key_name, 1, shares)
        service = EstateService(self.instance, _Inline())
        estate_run = service.create_run(devices, types=types, requested_by=run_label)
        built = 0
        progress = service.progress(estate_run)
        for chunk in range(progress.chunk_count):
            built += service.build_chunk(estate_run, chunk)
        return {"estate_run": estate_run, "devices": built, "parties": len(population.parties),
                "custodians": len(population.custodians)}

    def _populate(self) -> Population:
        build = PopulationBuilder(self.ra, actor=ACTOR)
        dcc_ids = self.instance.policies.environment.dcc_entity_identifiers
        parties: dict[str, dict[str, Any]] = {}
        dcc = build.party(DCC_NAME, "dcc", [("DCC", eui.hex) for eui in dcc_ids.values()])
        parties["dcc"] = {"id": dcc, "name": DCC_NAME}
        for name, category, roles in DRILL_PARTIES:
            parties[category] = {"id": build.party(name, category, [(role, None) for role in roles]), "name": name}
        for party in parties.values():
            aro = build.member(party["id"], f"ARO of {party['name']}"[:200], "aro", scopes=("organisation",))
            party["aro_token"] = aro.token
        pma = build.member(None, "SMKI PMA member (drill)", "pma")
        by_name = {p["name"]: p["id"] for p in parties.values()}
        custodians = []
        for party_name, person in CUSTODIANS:
            member = build.member(by_name[party_name], person, "key_custodian", token=False)
            custodians.append({"appointment_id": member.appointment_id, "name": person, "party": party_name})
        data = {"parties": parties, "pma_token": pma.token, "custodians": custodians}
        path = self.directory / POPULATION_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
        return Population(parties, data["pma_token"], custodians)  # type: ignore[arg-type]


class _Inline:
    """The estate's scheduler for a drill world: chunks are built right here, by :meth:`World.build`."""

    def schedule_chunks(self, run_id: int, chunks: Sequence[int], eta: dt.datetime | None = None) -> None:
        return None
