"""``custody.yaml``: how the Recovery and Contingency keys are held by Key Custodians (smki.recovery):
the quorum m of n shares, how many distinct Parties the custodians come from, the passphrase floor."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from smki.core.policyfiles.base import PolicyContext, PolicyModel, Problem

BAD_CUSTODY = "CA:CFG40"


class CustodyPolicy(PolicyModel):
    """The threshold scheme of the key custody. The defaults are the sandbox's 3 of 5."""

    threshold: int = Field(3, ge=2, le=255)
    """Shares a ceremony needs (m); at least 2, so that no single custodian can use a key."""
    shares: int = Field(5, ge=2, le=255)
    """Custodians a key is split among (n)."""
    minimum_organisations: int = Field(2, ge=1, le=255)
    """Distinct Parties the custodians of one custody must come from."""
    passphrase_min_length: int = Field(12, ge=8, le=1024)
    new_keys_in_custody: bool = True
    """Keys made at a new key ceremony are sealed into custody (false: the ceremony refuses to make one)."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if self.threshold > self.shares:
            yield Problem(("threshold",), f"at most shares ({self.shares})", self.threshold, BAD_CUSTODY)
        if self.minimum_organisations > self.shares:
            yield Problem(("minimum_organisations",), f"at most shares ({self.shares})",
                          self.minimum_organisations, BAD_CUSTODY)
