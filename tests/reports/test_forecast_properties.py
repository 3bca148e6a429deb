"""Forecasts come from outsiders: whatever an ARO sends, the answer is the forecast recorded exactly or a
coded refusal that records nothing, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smki.core.errors import SmkiError
from smki.ra import forecasts
from smki.ra.forms import FormService
from smki.ra.service import RegistrationAuthority
from tests.ra.conftest import Population
from tests.reports.conftest import Clock

figures = st.lists(st.one_of(st.integers(-5, 2_000_000_000), st.text(max_size=3), st.none()), min_size=0,
                   max_size=10)
payloads = st.fixed_dictionaries(
    {"quarter": st.one_of(st.sampled_from(["2026-Q3", "2026-Q4", "2027-Q1", "2030-Q2"]), st.text(max_size=8)),
     "device_single": figures, "device_batched": figures},
    optional={"from_month": st.one_of(st.sampled_from(["2026-10", "2027-03", "2027-06"]), st.text(max_size=8)),
              "organisation": figures, "extra": st.integers()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads)
def test_any_forecast_is_recorded_exactly_or_refused_with_a_code(
        ra: RegistrationAuthority, population: Population, clock: Clock, payload: dict[str, Any]) -> None:
    body = {"organisation_id": population.supplier_a, **payload}
    principal = ra.authenticate_token(population.aro_a.token)
    before = forecasts.baselines(ra.database, [f"{y}-{m:02d}" for y in (2026, 2027, 2030) for m in range(1, 13)])
    try:
        submission, _ = FormService(ra).submit("csr_forecast", body, principal)
    except SmkiError as refusal:
        assert refusal.code.startswith("FM:")
        after = forecasts.baselines(ra.database, list({month for _, month in before} | {"2026-10"}))
        assert after == before
        return
    months = submission.result["months"]
    baselines = forecasts.baselines(ra.database, months)
    for position, month in enumerate(months):
        line = baselines[(population.supplier_a, month)]
        assert line.device_single == body["device_single"][position]
        assert line.device_batched == body["device_batched"][position]
