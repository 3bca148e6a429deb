"""The band every variance report shares: exact at its edges (109.9% is not 110%), no exception for
sending fewer under L8.9, the 90%/110% band of the Service Request report from the same function."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from smki.core.policyfiles.variance import Band
from smki.reports import bands

L8_9 = Band(high=110)
SERVICE_REQUESTS = Band(high=110, low=90)


def test_forecast_exception_edges() -> None:
    assert bands.flag(1099, 1000, L8_9) is None          # 109.9%
    assert bands.flag(1100, 1000, L8_9) == bands.HIGH    # exactly 110%
    assert bands.flag(10_999_999, 10_000_000, L8_9) is None
    assert bands.flag(1, None, L8_9) == bands.NO_FORECAST
    assert bands.flag(1, 0, L8_9) == bands.NO_FORECAST   # a forecast of nought is no forecast to exceed
    assert bands.flag(0, None, L8_9) is None
    assert bands.flag(0, 1000, L8_9) is None             # no exception for sending fewer


def test_service_request_band_uses_the_same_machinery() -> None:
    assert bands.flag(900, 1000, SERVICE_REQUESTS) == bands.LOW
    assert bands.flag(901, 1000, SERVICE_REQUESTS) is None
    assert bands.flag(1100, 1000, SERVICE_REQUESTS) == bands.HIGH


def test_fractional_percentages_are_exact() -> None:
    assert bands.flag(1099, 1000, Band(high=109.9)) == bands.HIGH
    assert bands.flag(1098, 1000, Band(high=109.9)) is None


def test_percent_shown_is_cut_not_rounded() -> None:
    assert bands.percent_of(10_999, 10_000) == Decimal("109.9")   # 109.99% never shows as 110.0%
    assert bands.percent_of(1100, 1000) == Decimal("110.0")
    assert bands.percent_of(5, 0) is None


def test_mp160_is_strictly_above() -> None:
    assert not bands.above(150, Fraction(100), 150)
    assert bands.above(151, Fraction(100), 150)
    assert bands.above(1, Fraction(0), 150)


@given(st.integers(0, 10**9), st.integers(1, 10**9))
def test_high_flag_agrees_with_integer_arithmetic(actual: int, forecast: int) -> None:
    assert (bands.flag(actual, forecast, L8_9) == bands.HIGH) == (actual * 10 >= forecast * 11)
