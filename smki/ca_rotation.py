"""Changes to the CA hierarchy after smki init: a new Issuing OCA, a new Root OCA, a new Recovery key."""

from __future__ import annotations
