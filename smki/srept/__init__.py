"""SREPT rehearsal: the scenario catalogue applied to a Party's recorded interactions, progress, the evidence pack
and Test Completion Report, the pass recorded in the RAPP, and a model Party that plays every scenario."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"
