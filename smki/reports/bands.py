"""Comparing an actual against a forecast, shared by every variance report: the CSR Forecast Variance
Report's 110% Forecast Exception, the Service Request report's 90%/110% band (H3.24), MP160's 150% of a
trailing average. Exact arithmetic on whole numbers: 109.9% is not 110%, however the floats round."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from fractions import Fraction

from smki.core.policyfiles.variance import Band

HIGH, LOW, NO_FORECAST = "high", "low", "no_forecast"


def _percent(value: float) -> Fraction:
    return Fraction(Decimal(str(value)))


def percent_of(actual: int, forecast: int | Fraction) -> Decimal | None:
    """``actual`` as a percentage of ``forecast``, cut (not rounded) to one decimal place, so that 109.96%
    never shows as the 110.0% it is not; None without a forecast."""
    baseline = Fraction(forecast)
    if baseline == 0:
        return None
    return (Decimal(actual * 100 * baseline.denominator) / Decimal(baseline.numerator)).quantize(
        Decimal("0.1"), rounding=ROUND_DOWN)


def flag(actual: int, forecast: int | None, band: Band) -> str | None:
    """HIGH at or above ``band.high`` percent of the forecast, LOW at or below ``band.low``, NO_FORECAST for
    any volume with no forecast (or a forecast of nought); None otherwise."""
    if forecast is None or forecast == 0:
        return NO_FORECAST if actual > 0 else None
    if band.high is not None and actual * 100 >= _percent(band.high) * forecast:
        return HIGH
    if band.low is not None and actual * 100 <= _percent(band.low) * forecast:
        return LOW
    return None


def above(actual: int, baseline: Fraction, percent: float) -> bool:
    """Strictly above ``percent`` of ``baseline`` (MP160: "more than 150%"); any volume is above nought."""
    return actual * 100 > _percent(percent) * baseline
