"""The Repository Demand Exceptions report (Appendix P): forecasts on the RAPP form, counts from the
Repository's request log, the 120% threshold exactly, band edges in local time, the newest forecast
winning, requests with no forecast; and the report's counts against an independent count of the log."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from repository.demand import request_counts
from repository.models import RepositoryRequestLog
from smki.core.errors import ConfigurationError, SmkiError
from smki.core.policyfiles.base import parse_policy
from smki.core.policyfiles.variance import VariancePolicy
from smki.ra import demand_forecasts
from smki.ra.forms import FormService
from smki.ra.lodging import repository_holder
from smki.ra.population import Member, PopulationBuilder
from smki.ra.service import RegistrationAuthority
from smki.reports import bands, demand, demand_render
from tests.ra.conftest import Population, auth
from tests.reports.conftest import Clock, at

LONDON = ZoneInfo("Europe/London")
AFTER_OCTOBER = at("2026-11-02T09:00:00")
_reference = itertools.count(1)


def local(text: str) -> dt.datetime:
    """A London wall-clock time, as the UTC instant the request log stores."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=LONDON).astimezone(dt.UTC)


class RequestLedger:
    """Writes request-log rows as the Repository's request log does (one row per request)."""

    def __init__(self, ra: RegistrationAuthority) -> None:
        self.database = ra.database

    def requests(self, holder: str | None, when: dt.datetime, count: int = 1,
                 operation: str = "certificatesearch") -> None:
        with self.database.session() as session:
            session.execute(insert(RepositoryRequestLog), [
                {"audit_reference": f"ref-{next(_reference)}", "holder": holder, "operation": operation,
                 "response_code": 200, "at": when, "detail": None} for _ in range(count)])


@pytest.fixture
def user(ra: RegistrationAuthority, population: Population) -> Member:
    """A Repository user of supplier A: an ARO with the repository scope."""
    return PopulationBuilder(ra).member(population.supplier_a, "Rita Repository", "aro", scopes=("repository",))


def holder_of(ra: RegistrationAuthority, member: Member) -> str:
    return repository_holder("Alpha Energy Supply Ltd", member.person_id)


def submit(ra: RegistrationAuthority, by: Member, payload: dict[str, Any]) -> Any:
    return FormService(ra).submit("repository_demand_forecast", payload, ra.authenticate_token(by.token))[0]


def forecast(population: Population, user: Member, first: str, last: str, portal: list[int],
             web_service: list[int]) -> dict[str, Any]:
    return {"organisation_id": population.supplier_a, "person_id": user.person_id, "first_day": first,
            "last_day": last, "portal": portal, "web_service": web_service}


def report(ra: RegistrationAuthority, period: str, now: dt.datetime = AFTER_OCTOBER) -> demand.DemandReport:
    return demand.build(ra.database, ra.instance.policies.variance, period, now=now)


def line(found: demand.DemandReport, user: str, day: str, band: str, interface: str) -> demand.DemandLine:
    [match] = [x for x in found.lines if (x.user, x.day.isoformat(), x.band, x.interface) == (user, day, band,
                                                                                              interface)]
    return match


# --- forecasts -------------------------------------------------------------------------------------------

def test_an_aro_submits_a_forecast_through_the_api_and_it_takes_effect_at_once(
        client: Any, ra: RegistrationAuthority, population: Population, user: Member, clock: Clock) -> None:
    body = forecast(population, user, "2026-10-01", "2026-10-03", [1, 2, 3], [10, 20, 30])
    response = client.post("/api/v1/ra/forms/repository_demand_forecast", json=body, headers=auth(population.aro_a))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "approved"
    found = demand_forecasts.daily_forecasts(ra.database, dt.date(2026, 9, 30), dt.date(2026, 10, 31))
    user_name = holder_of(ra, user)
    assert len(found) == 9  # three days, three bands
    core = found[user_name, dt.date(2026, 10, 2), "core"]
    assert (core.portal, core.web_service) == (2, 20)


def test_bad_forecasts_are_refused_with_every_problem_and_nothing_recorded(
        client: Any, ra: RegistrationAuthority, population: Population, user: Member, clock: Clock) -> None:
    negative = forecast(population, user, "2026-10-01", "2026-10-01", [-1, 0, 0], [0, 0, "x"])  # type: ignore[list-item]
    response = client.post("/api/v1/ra/forms/repository_demand_forecast", json=negative,
                           headers=auth(population.aro_a))
    assert response.status_code == 400
    assert {e["field"] for e in response.get_json()["errors"]} == {"portal/0", "web_service/2"}

    with pytest.raises(SmkiError) as many:   # two bands of three, backwards days, a day begun: all at once
        submit(ra, population.aro_a, forecast(population, user, "2026-09-15", "2026-09-14", [1, 1], [1, 1, 1]))
    assert {f.code for f in many.value.details} == {demand_forecasts.BAD_DAYS, demand_forecasts.DAY_BEGUN,
                                                     demand_forecasts.BAD_BANDS}
    with pytest.raises(SmkiError) as long:
        submit(ra, population.aro_a, forecast(population, user, "2026-10-01", "2027-01-31", [1] * 3, [1] * 3))
    assert long.value.code == demand_forecasts.BAD_DAYS
    with pytest.raises(SmkiError) as not_user:   # an ARO without the repository scope is no Repository user
        submit(ra, population.aro_a, forecast(population, population.aro_a, "2026-10-01", "2026-10-01",
                                              [1] * 3, [1] * 3))
    assert not_user.value.code == demand_forecasts.NOT_A_USER
    with pytest.raises(SmkiError) as other_party:
        submit(ra, population.aro_b, forecast(population, user, "2026-10-01", "2026-10-01", [1] * 3, [1] * 3))
    assert other_party.value.code.startswith("AZ:")
    assert demand_forecasts.daily_forecasts(ra.database, dt.date(2026, 9, 1), dt.date(2027, 2, 1)) == {}


# --- the report ------------------------------------------------------------------------------------------

def test_119_9_percent_is_not_an_exception_and_120_percent_is(
        ra: RegistrationAuthority, population: Population, user: Member, clock: Clock) -> None:
    submit(ra, population.aro_a, forecast(population, user, "2026-10-01", "2026-10-31", [0, 10, 0], [0, 1000, 0]))
    name, ledger = holder_of(ra, user), RequestLedger(ra)
    ledger.requests(name, local("2026-10-05T12:00:00"), 1199)
    ledger.requests(name, local("2026-10-06T12:00:00"), 1200)
    ledger.requests(name, local("2026-10-06T12:00:00"), 12, operation="portal_search")
    found = report(ra, "2026-10")
    below, at_limit = line(found, name, "2026-10-05", "core", "web_service"), \
        line(found, name, "2026-10-06", "core", "web_service")
    assert (below.requests, below.percent, below.exception) == (1199, demand.Decimal("119.9"), None)
    assert (at_limit.requests, at_limit.percent, at_limit.exception) == (1200, demand.Decimal("120.0"), bands.HIGH)
    assert line(found, name, "2026-10-06", "core", "portal").exception == bands.HIGH   # 12 of 10
    assert {(x.day.isoformat(), x.interface) for x in found.exceptions} == {("2026-10-06", "web_service"),
                                                                             ("2026-10-06", "portal")}
    # a day with a forecast and no requests is a line, not an exception
    assert line(found, name, "2026-10-07", "core", "web_service").requests == 0


def test_requests_with_no_forecast_are_exceptions_and_nobodys_requests_are_not_counted(
        ra: RegistrationAuthority, population: Population, user: Member, clock: Clock) -> None:
    ledger = RequestLedger(ra)
    ledger.requests("party:Beta Power Ltd/person:99", local("2026-10-09T21:00:00"), 3)
    ledger.requests(None, local("2026-10-09T21:00:00"), 50)              # a refused key: nobody's
    ledger.requests("party:Beta Power Ltd/person:99", local("2026-10-09T21:00:00"), 4, operation="crl")
    found = report(ra, "2026-10")
    [only] = found.lines
    assert (only.user, only.band, only.requests, only.forecast, only.exception) == (
        "party:Beta Power Ltd/person:99", "evening", 3, None, bands.NO_FORECAST)
    assert found.reason(only) == "requests with no forecast"
    assert found.unclassified == {"crl": 4}   # an operation of no interface is shown, not silently lost


def test_the_newest_forecast_covering_a_day_wins_for_the_whole_day(
        ra: RegistrationAuthority, population: Population, user: Member, clock: Clock) -> None:
    submit(ra, population.aro_a, forecast(population, user, "2026-10-01", "2026-10-10", [5, 5, 5], [100, 100, 100]))
    submit(ra, population.aro_a, forecast(population, user, "2026-10-05", "2026-10-06", [0, 0, 0], [0, 200, 0]))
    name, ledger = holder_of(ra, user), RequestLedger(ra)
    for day in ("2026-10-04", "2026-10-05", "2026-10-07"):
        ledger.requests(name, local(f"{day}T03:00:00"), 100)   # night band
    found = report(ra, "2026-10")
    assert line(found, name, "2026-10-04", "night", "web_service").exception is None          # 100 of 100
    newer = line(found, name, "2026-10-05", "night", "web_service")                           # 100 of 0
    assert (newer.forecast, newer.exception) == (0, bands.NO_FORECAST)
    assert found.reason(newer) == "requests against a forecast of nought"
    assert line(found, name, "2026-10-05", "core", "web_service").forecast == 200
    assert line(found, name, "2026-10-07", "night", "web_service").forecast == 100            # the older again


def test_a_request_at_a_band_edge_is_in_the_band_that_starts_there(
        ra: RegistrationAuthority, population: Population, user: Member, clock: Clock) -> None:
    name, ledger = holder_of(ra, user), RequestLedger(ra)
    tick = dt.timedelta(microseconds=1)
    ledger.requests(name, local("2026-10-12T07:00:00"), 1)                   # core starts at 07:00 London
    ledger.requests(name, local("2026-10-12T07:00:00") - tick, 2)            # night ends just before
    ledger.requests(name, local("2026-10-12T20:00:00"), 4)                   # evening starts at 20:00
    ledger.requests(name, local("2026-10-13T00:00:00") - tick, 8)            # the day's last instant
    ledger.requests(name, local("2026-10-13T00:00:00"), 16)                  # the next day's night
    # 25 October 2026: the clocks go back; 00:30 and 01:30 (twice) are all that day's night
    ledger.requests(name, local("2026-10-25T00:30:00"), 1)
    ledger.requests(name, dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC), 1)   # 01:30 BST
    ledger.requests(name, dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC), 1)   # 01:30 GMT
    ledger.requests(name, dt.datetime(2026, 10, 25, 6, 59, tzinfo=dt.UTC), 1)   # 06:59 GMT
    ledger.requests(name, dt.datetime(2026, 10, 25, 7, 0, tzinfo=dt.UTC), 1)    # 07:00 GMT: core
    found = report(ra, "2026-10")
    figures = {(x.day.isoformat(), x.band): x.requests for x in found.lines}
    assert figures == {("2026-10-12", "night"): 2, ("2026-10-12", "core"): 1, ("2026-10-12", "evening"): 12,
                       ("2026-10-13", "night"): 16, ("2026-10-25", "night"): 4, ("2026-10-25", "core"): 1}


def test_the_report_agrees_with_an_independent_count_of_the_log(
        ra: RegistrationAuthority, population: Population, user: Member, clock: Clock) -> None:
    """Random requests across October (and either side, and across the clocks going back), counted here in
    Python from each row's London wall-clock time, against the report's one grouped query."""
    rng = random.Random(20261025)
    holders = [holder_of(ra, user), "party:Beta Power Ltd/person:7", "party:Gamma/person:8"]
    operations = ["certificatesearch", "retrievecertificate", "portal_search", "portal_download"]
    interface = {"certificatesearch": "web_service", "retrievecertificate": "web_service",
                 "portal_search": "portal", "portal_download": "portal"}
    start, span = at("2026-09-30T20:00:00"), 33 * 24 * 3600
    rows: list[tuple[str, str, dt.datetime]] = []
    expected: Counter[tuple[str, dt.date, str, str]] = Counter()
    for _ in range(2000):
        when = start + dt.timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6))
        holder, operation = rng.choice(holders), rng.choice(operations)
        rows.append((holder, operation, when))
        wall = when.astimezone(LONDON)
        if wall.month == 10:
            band = "night" if wall.hour < 7 else "core" if wall.hour < 20 else "evening"
            expected[holder, wall.date(), band, interface[operation]] += 1
    with ra.database.session() as session:
        session.execute(insert(RepositoryRequestLog), [
            {"audit_reference": f"ref-{next(_reference)}", "holder": h, "operation": o, "response_code": 200,
             "at": w, "detail": None} for h, o, w in rows])
    found = report(ra, "2026-10")
    counted = {(x.user, x.day, x.band, x.interface): x.requests for x in found.lines if x.requests}
    assert counted == dict(expected)
    assert sum(counted.values()) == sum(1 for _, _, w in rows if w.astimezone(LONDON).month == 10)


def test_request_counts_refuses_slots_out_of_order(ra: RegistrationAuthority) -> None:
    with pytest.raises(ValueError):
        request_counts(ra.database, [at("2026-10-02T00:00:00"), at("2026-10-01T00:00:00")])
    with pytest.raises(ValueError):
        request_counts(ra.database, [at("2026-10-02T00:00:00")])


@pytest.mark.parametrize(("period", "code"), [("2026-13", demand.BAD_PERIOD), ("2026-02-30", demand.BAD_PERIOD),
                                               ("october", demand.BAD_PERIOD), ("2026-11", demand.PERIOD_NOT_ENDED),
                                               ("2026-11-02", demand.PERIOD_NOT_ENDED)])
def test_a_bad_or_unfinished_period_is_refused(ra: RegistrationAuthority, period: str, code: str) -> None:
    with pytest.raises(SmkiError) as refused:
        report(ra, period)
    assert refused.value.code == code


def test_one_day_and_its_renderings(
        ra: RegistrationAuthority, population: Population, user: Member, clock: Clock) -> None:
    submit(ra, population.aro_a, forecast(population, user, "2026-10-01", "2026-10-01", [1, 1, 1], [1, 1, 1]))
    name, ledger = holder_of(ra, user), RequestLedger(ra)
    ledger.requests(name, local("2026-10-01T08:00:00"), 2)
    ledger.requests("party:<script>/person:1", local("2026-10-01T08:00:00"), 1)
    ledger.requests(name, local("2026-10-02T08:00:00"), 5)    # another day: not in this report
    found = report(ra, "2026-10-01")
    assert {x.day for x in found.lines} == {dt.date(2026, 10, 1)}
    csv_text = demand_render.render(found, "csv").decode()
    assert csv_text.splitlines()[0].startswith("Repository user,Day,Time band,Interface,Requests,Forecast")
    assert f"{name},2026-10-01,core,Web Service,2,1,200.0%,at or above 120% of forecast" in csv_text
    page = demand_render.render(found, "html").decode()
    assert "Exceptions (2)" in page and "<script>" not in page and "&lt;script&gt;" in page


def test_cli_writes_the_report_for_a_month_or_a_day(
        ra: RegistrationAuthority, population: Population, user: Member, clock: Clock,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from smki.reports.cli import report as report_command

    RequestLedger(ra).requests(holder_of(ra, user), local("2026-10-01T08:00:00"), 3)
    monkeypatch.setenv("SMKI_INSTANCE", str(ra.instance.settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", ra.instance.settings.database_url)
    runner, out = CliRunner(), tmp_path / "demand.html"
    written = runner.invoke(report_command, ["demand", "--month", "2026-10", "--format", "html", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert "1 exception(s) in 1 line(s)" in written.output and b"Exceptions (1)" in out.read_bytes()
    day = runner.invoke(report_command, ["demand", "--day", "2026-10-01"])
    assert day.exit_code == 0 and ",2026-10-01,core,Web Service,3,,,requests with no forecast" in day.output
    both = runner.invoke(report_command, ["demand", "--day", "2026-10-01", "--month", "2026-10"])
    assert both.exit_code == 2 and demand.BAD_PERIOD in both.output
    ahead = runner.invoke(report_command, ["demand", "--month", "2099-01"])
    assert ahead.exit_code == 2 and demand.PERIOD_NOT_ENDED in ahead.output


# --- the policy ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "said"), [
    ({"bands": [{"name": "day", "start": "01:00"}]}, "repository_demand.bands[0].start"),
    ({"bands": [{"name": "a", "start": "00:00"}, {"name": "b", "start": "09:00"}, {"name": "c", "start": "08:00"}]},
     "repository_demand.bands[2].start"),
    ({"bands": [{"name": "a", "start": "00:00"}, {"name": "a", "start": "09:00"}]}, "repository_demand.bands[1].name"),
    ({"bands": [{"name": "a", "start": "24:00"}]}, "repository_demand.bands[0].start"),
    ({"bands": []}, "repository_demand.bands[0].start"),
    ({"threshold": {"high": None}}, "repository_demand.threshold.high"),
    ({"interfaces": {"portal": ["x"], "web_service": ["x"]}}, "repository_demand.interfaces.web_service"),
])
def test_a_bad_demand_section_is_refused_naming_the_key(section: dict[str, object], said: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_policy({"repository_demand": section}, Path("variance.yaml"), VariancePolicy)
    assert said in refused.value.message


def test_the_shipped_policy_has_appendix_p_s_120_percent(ra: RegistrationAuthority) -> None:
    demand_policy = ra.instance.policies.variance.repository_demand
    assert demand_policy.threshold.high == 120
    assert [band.start for band in demand_policy.bands] == ["00:00", "07:00", "20:00"]
