"""The threshold scheme on its own: any quorum reconstructs the KEK, fewer shares do not, a sealed share opens
only with its passphrase and for its own custody and custodian."""

from __future__ import annotations

import itertools
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smki.recovery import shares


def test_every_quorum_of_three_in_five_reconstructs_the_kek() -> None:
    kek = shares.new_kek()
    split = shares.split(kek, 3, 5)
    assert sorted(s.index for s in split) == [1, 2, 3, 4, 5]
    for chosen in itertools.combinations(split, 3):
        assert shares.combine(list(chosen)) == kek


def test_two_shares_of_a_three_quorum_give_a_wrong_kek() -> None:
    kek = shares.new_kek()
    split = shares.split(kek, 3, 5)
    assert all(shares.combine(list(pair)) != kek for pair in itertools.combinations(split, 2))


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(2, 7), st.integers(0, 3), st.randoms())
def test_any_threshold_subset_reconstructs(kek: bytes, threshold: int, extra: int, random: Random) -> None:
    count = threshold + extra
    split = shares.split(kek, threshold, count)
    assert shares.combine(random.sample(split, threshold)) == kek


def test_a_sealed_share_opens_only_with_its_passphrase_and_binding() -> None:
    share = shares.split(shares.new_kek(), 2, 2)[0]
    sealed = shares.seal(share, "correct horse battery", "smki-custody:1:7")
    assert shares.open_sealed(sealed, "correct horse battery", "smki-custody:1:7") == share
    with pytest.raises(shares.ShareUnopenable):
        shares.open_sealed(sealed, "wrong horse battery", "smki-custody:1:7")
    with pytest.raises(shares.ShareUnopenable):
        shares.open_sealed(sealed, "correct horse battery", "smki-custody:1:8")  # another custodian's name
    with pytest.raises(shares.ShareUnopenable):
        shares.open_sealed(sealed[:-1] + bytes([sealed[-1] ^ 1]), "correct horse battery", "smki-custody:1:7")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_open_as_a_share(blob: bytes) -> None:
    with pytest.raises(shares.ShareUnopenable):
        shares.open_sealed(blob, "any passphrase at all", "smki-custody:1:1")


def test_a_share_never_prints_its_value() -> None:
    share = shares.split(shares.new_kek(), 2, 3)[0]
    assert share.value.hex() not in repr(share)
