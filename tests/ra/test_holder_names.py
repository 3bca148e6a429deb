"""The RA's name for a person at the Repository fits the Repository's holder column for any Party name, so
approving an ARO of a Party with a long name is not refused by the database."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smki.ra.lodging import repository_holder

HOLDER_COLUMN = 128  # repository.models: String(128)


@given(st.one_of(st.none(), st.text(max_size=300)), st.integers(min_value=1, max_value=2**31 - 1))
def test_holder_fits_the_repository_column_and_stays_unique_per_person(name: str | None, person: int) -> None:
    holder = repository_holder(name, person)
    assert len(holder) <= HOLDER_COLUMN
    assert holder.endswith(f"/person:{person}")
    assert repository_holder(name, person + 1) != holder
