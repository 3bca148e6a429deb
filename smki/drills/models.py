"""Tables of smki.drills."""

from __future__ import annotations
