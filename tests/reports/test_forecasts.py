"""CSR forecasts on the RAPP form: submitted by an ARO through the API, validated, amended by a later
forecast; the baseline for a month is the newest forecast covering it. Exceptional-demand notices."""

from __future__ import annotations

from typing import Any

import pytest

from smki.core.errors import SmkiError
from smki.ra import forecasts
from smki.ra.forms import FormService
from smki.ra.identity import NotAuthorised
from smki.ra.service import RegistrationAuthority
from tests.ra.conftest import Population, auth
from tests.reports.conftest import Clock, at


def submit(ra: RegistrationAuthority, member: Any, payload: dict[str, Any], form: str = "csr_forecast") -> Any:
    return FormService(ra).submit(form, payload, ra.authenticate_token(member.token))[0]


def forecast(organisation_id: int, quarter: str, single: list[int], batched: list[int], **extra: Any) -> dict[str, Any]:
    return {"organisation_id": organisation_id, "quarter": quarter, "device_single": single,
            "device_batched": batched, **extra}


def test_aro_submits_a_forecast_through_the_api_and_it_takes_effect_at_once(
        client, ra: RegistrationAuthority, population: Population, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    body = forecast(population.supplier_a, "2026-Q4", [10, 20, 30, 40, 50, 60, 70, 80], [1] * 8,
                    organisation=[5] * 8)
    response = client.post("/api/v1/ra/forms/csr_forecast", json=body, headers=auth(population.aro_a))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "approved"
    months = ["2026-10", "2026-11", "2026-12", "2027-01", "2027-02", "2027-03", "2027-04", "2027-05"]
    baselines = forecasts.baselines(ra.database, months)
    assert [baselines[(population.supplier_a, m)].device_single for m in months] == [10, 20, 30, 40, 50, 60, 70, 80]
    assert baselines[(population.supplier_a, "2026-12")].device == 31
    assert baselines[(population.supplier_a, "2026-12")].organisation == 5


def test_bad_forecasts_are_refused_with_every_problem_and_nothing_recorded(
        client, ra: RegistrationAuthority, population: Population, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    negative = forecast(population.supplier_a, "2026-Q4", [-1, 2], ["x", 2])
    response = client.post("/api/v1/ra/forms/csr_forecast", json=negative, headers=auth(population.aro_a))
    assert response.status_code == 400
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert fields == {"device_single/0", "device_batched/0"}

    nine = forecast(population.supplier_a, "2026-Q4", [1] * 9, [1] * 9)   # past the eight-month window
    assert client.post("/api/v1/ra/forms/csr_forecast", json=nine,
                       headers=auth(population.aro_a)).status_code == 400
    with pytest.raises(SmkiError) as window:
        submit(ra, population.aro_a, forecast(population.supplier_a, "2026-Q4", [1] * 3, [1] * 3,
                                              from_month="2027-04"))
    assert window.value.code == forecasts.NOT_IN_WINDOW and len(window.value.details) == 1   # 2027-06
    with pytest.raises(SmkiError) as begun:
        submit(ra, population.aro_a, forecast(population.supplier_a, "2026-Q3", [1] * 3, [1] * 3))
    assert begun.value.code == forecasts.MONTH_BEGUN   # September 2026 has begun on the clock's 15 September
    with pytest.raises(SmkiError) as uneven:
        submit(ra, population.aro_a, forecast(population.supplier_a, "2026-Q4", [1] * 3, [1] * 2))
    assert uneven.value.code == forecasts.UNEVEN_MONTHS
    with pytest.raises(SmkiError) as not_subscriber:
        submit(ra, population.aro_a, forecast(population.supplier_a, "2026-Q4", [1], [1]) | {
            "organisation_id": population.manufacturer})
    assert not_subscriber.value.code.startswith(("AZ:", "FM:"))
    assert forecasts.baselines(ra.database, ["2026-10", "2027-04", "2026-09"]) == {}


def test_only_an_aro_acting_for_the_subscriber_may_forecast_for_it(
        ra: RegistrationAuthority, population: Population, clock: Clock) -> None:
    with pytest.raises(NotAuthorised):
        submit(ra, population.aro_b, forecast(population.supplier_a, "2026-Q4", [1], [1]))


def test_the_latest_forecast_covering_a_month_is_its_baseline(
        ra: RegistrationAuthority, population: Population, clock: Clock) -> None:
    submit(ra, population.aro_a, forecast(population.supplier_a, "2026-Q4", [100] * 8, [0] * 8))
    clock.now = at("2026-12-10T09:00:00")   # the next quarter's forecast, submitted during December
    submit(ra, population.aro_a, forecast(population.supplier_a, "2027-Q1", [200] * 8, [0] * 8))
    clock.now = at("2027-01-20T09:00:00")   # then an amendment of the later months only
    submit(ra, population.aro_a, forecast(population.supplier_a, "2027-Q1", [300, 300], [7, 7], from_month="2027-02"))
    baselines = forecasts.baselines(ra.database, ["2026-12", "2027-01", "2027-02", "2027-03", "2027-04"])
    device = {month: b.device for (_, month), b in baselines.items()}
    assert device == {"2026-12": 100, "2027-01": 200, "2027-02": 307, "2027-03": 307, "2027-04": 200}


def test_exceptional_demand_notice(ra: RegistrationAuthority, population: Population, clock: Clock) -> None:
    submit(ra, population.aro_a, {"organisation_id": population.supplier_a, "month": "2026-09",
                                  "expected_device_csrs": 50000, "reason": "rollout of a new meter type"},
           form="exceptional_demand_notice")
    assert forecasts.notices(ra.database, ["2026-09", "2026-10"]) == {(population.supplier_a, "2026-09")}
    with pytest.raises(SmkiError) as ended:
        submit(ra, population.aro_a, {"organisation_id": population.supplier_a, "month": "2026-08",
                                      "expected_device_csrs": 1, "reason": "too late"},
               form="exceptional_demand_notice")
    assert ended.value.code == forecasts.MONTH_BEGUN


def test_aro_submits_a_forecast_through_the_portal(client, ra: RegistrationAuthority, population: Population,
                                                   clock: Clock) -> None:  # type: ignore[no-untyped-def]
    from tests.portal import form_token, portal_sign_in

    portal_sign_in(client, population.aro_a.token)
    path = "/portal/forms/csr_forecast"
    page = client.get(path).data.decode()
    assert "Device CSRs sent in batches, per month" in page
    sent = client.post(path, data={"organisation_id": str(population.supplier_a), "quarter": "2026-Q4",
                                   "device_single": "10, 20", "device_batched": "1, 2",
                                   "csrf_token": form_token(client, path)})
    assert sent.status_code == 200, sent.data.decode()[:2000]
    assert forecasts.baselines(ra.database, ["2026-11"])[(population.supplier_a, "2026-11")].device == 22
    refused = client.post(path, data={"organisation_id": str(population.supplier_a), "quarter": "2026-Q4",
                                      "device_single": "10, -1", "device_batched": "1, 2",
                                      "csrf_token": form_token(client, path)})
    assert refused.status_code == 400 and "device_single/1" in refused.data.decode()
