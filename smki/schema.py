"""The whole database schema: every area's tables and every area's migrations, in one place.

The core's :class:`~smki.core.db.Database` knows no area. This module is the one that names them all,
so that the Alembic environment and ``migrate`` see every table, while the Repository keeps its own
models and migration branch (``repository/migrations``) and never imports the RA or the CA.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from smki.core.db import Base, Database

if TYPE_CHECKING:
    from alembic.config import Config

_SMKI = Path(__file__).resolve().parent
_REPOSITORY = _SMKI.parent / "repository"

# The Alembic environment (env.py) sits with the CA core's migrations; each area has a branch of its own.
SCRIPT_LOCATION = _SMKI / "migrations"
VERSION_LOCATIONS = (_SMKI / "migrations" / "versions", _REPOSITORY / "migrations" / "versions",
                     _SMKI / "estate" / "migrations" / "versions",
                     _SMKI / "recovery" / "migrations" / "versions",
                     _SMKI / "drills" / "migrations" / "versions",
                     _SMKI / "srept" / "migrations" / "versions")

# Every module that declares tables, by area.
MODEL_MODULES = ("smki.models", "repository.models", "smki.ra.models", "smki.devicecsr.models",
                 "smki.estate.models", "smki.recovery.models",
                 "smki.ra.forecasts", "smki.reports.models", "smki.ra.demand_forecasts",
                 "smki.drills.models", "smki.srept.models")


def import_all_models() -> type[Base]:
    """Import every module that declares tables, so ``Base.metadata`` is complete; returns the base."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base


def alembic_config(database: Database) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # os.pathsep, not spaces, so a checkout under a folder with a space in its name still migrates
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in VERSION_LOCATIONS))
    config.attributes["connection_url"] = database.url
    return config


def migrate(database: Database) -> None:
    """Bring the schema to the newest revision of every area's branch (idempotent)."""
    from alembic import command

    config = alembic_config(database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
