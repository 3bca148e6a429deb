"""Tables of smki.srept."""

from __future__ import annotations
