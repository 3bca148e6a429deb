"""A copy of the shipped policy folder for each test, to break one file of."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from smki.core.config import DEFAULT_POLICIES_DIR


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, directory)
    return directory


Edit = Callable[[Any], Any]


def rewrite(directory: Path, file: str, edit: Edit) -> None:
    """Load ``file`` as YAML, let ``edit`` change it (in place, or by returning a replacement), write it back."""
    path = directory / file
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    changed = edit(data)
    path.write_text(yaml.safe_dump(data if changed is None else changed, sort_keys=False), encoding="utf-8")
