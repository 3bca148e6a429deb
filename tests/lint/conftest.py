"""Helpers for the linter's tests: the test environment's policies and a one-call lint of files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.policy import Policies, load_policies
from smki.lint.linter import CertificateReport, lint
from smki.lint.source import read_all

LintFiles = Callable[..., list[CertificateReport]]


@pytest.fixture(scope="session")
def test_policies() -> Policies:
    # the interop vectors carry the DCC test environment's OIDs
    return load_policies(DEFAULT_POLICIES_DIR, "test")


@pytest.fixture
def lint_files(test_policies: Policies) -> LintFiles:
    def run(*paths: Path, chain: tuple[Path, ...] = (), at: dt.datetime | None = None,
            profile: str | None = None) -> list[CertificateReport]:
        return lint(read_all(list(paths)), test_policies, profile=profile, chain=read_all(list(chain)), at=at)
    return run


def pairs(report: CertificateReport) -> set[tuple[str, str | None]]:
    return {(f.code, f.field) for f in report.findings}
