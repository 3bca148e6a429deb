"""The one-way dependencies of the developers' guide, checked on every run (contracts in .importlinter)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    linter = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(linter).exists():
        pytest.fail("import-linter is not installed: pip install -e '.[test]'")
    result = subprocess.run([linter, "--config", str(ROOT / ".importlinter")], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own_package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] in ("smki", "repository"):
            source_package = node.module.rsplit(".", 1)[0]
            for alias in node.names:
                if alias.name.startswith("_") and not source_package.startswith(own_package):
                    found.append(f"{path.relative_to(ROOT)}: from {node.module} import {alias.name}")
    return found


def test_no_module_imports_private_names_of_another_area() -> None:
    offences = [line for package in ("smki", "repository") for path in sorted((ROOT / package).rglob("*.py"))
                for line in _private_imports(path)]
    assert offences == []
