"""The report's figures: volumes against forecast per Subscriber and in total, the Forecast Exceptions at
their edges, the MP160 regime, the Panel's redaction; and agreement with a count made here, row by row,
from the channels' own records."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from smki.core.config import DEFAULT_POLICIES_DIR, Settings
from smki.devicecsr.models import DeviceCsrBatch, DeviceCsrOutcome, DeviceCsrTransaction
from smki.instance import Instance
from smki.ra.forms import FormService
from smki.ra.models import CsrDecision, Person
from smki.ra.service import RegistrationAuthority
from smki.reports import bands, variance
from tests.ra.conftest import Population
from tests.reports.conftest import Clock, Ledger, at

LONDON = ZoneInfo("Europe/London")


def forecast(ra: RegistrationAuthority, member: Any, organisation_id: int, single: int, batched: int) -> None:
    FormService(ra).submit("csr_forecast", {"organisation_id": organisation_id, "quarter": "2026-Q4",
                                            "device_single": [single] * 8, "device_batched": [batched] * 8,
                                            "organisation": [10] * 8}, ra.authenticate_token(member.token))


@pytest.fixture
def october(ra: RegistrationAuthority, population: Population, ledger: Ledger, clock: Clock) -> Population:
    """October 2026: Alpha at exactly 110% of its forecast, Beta at 109.9%, Gamma with no forecast."""
    a, b, network = population.supplier_a, population.supplier_b, population.network
    forecast(ra, population.aro_a, a, 400, 600)                      # 1,000 Device CSRs
    forecast(ra, population.aro_b, b, 0, 1000)                       # 1,000
    forecast(ra, population.aro_network, population.network, 0, 0)  # nought: no forecast to measure against
    clock.now = at("2026-09-20T10:00:00")
    ledger.batch(a, at("2026-10-05T10:00:00"), 550, malformed=50)    # 600 batched (CSR_ERROR counts)
    ledger.adhoc(a, at("2026-10-06T10:00:00"), 300)                  # 300 single through the ad hoc service
    ledger.decisions(a, at("2026-10-07T10:00:00"), 150, kind="device", status="released")   # single, RA API
    ledger.decisions(a, at("2026-10-07T11:00:00"), 50, kind="device", status="refused")
    ledger.decisions(a, at("2026-10-05T10:00:00"), 550, kind="device", channel="batch")      # RA rows of the batch
    ledger.decisions(a, at("2026-10-09T10:00:00"), 7, kind="organisation")
    ledger.decisions(None, at("2026-10-09T10:00:00"), 3, kind="organisation", status="refused",
                     person=population.aro_a.person_id)             # subject of no Subscriber: the ARO's Party
    ledger.batch(b, at("2026-09-30T23:30:00"), 99)                    # 00:30 on 1 October in London
    ledger.batch(b, at("2026-10-15T02:00:00"), 1000, channel="portal")
    ledger.batch(b, at("2026-10-31T23:59:59"), 0)
    ledger.batch(b, at("2026-09-29T10:00:00"), 500)                   # September: not counted
    ledger.batch(b, at("2026-11-01T00:00:00"), 500)                   # November: not counted
    ledger.adhoc(network, at("2026-10-20T10:00:00"), 1, status="CSR_ERROR")
    ledger.adhoc(None, at("2026-10-20T10:00:00"), 5)                  # never identified: nobody's CSRs
    return population


def count_from_the_ledger(ra: RegistrationAuthority, month: str) -> dict[int, Counter[str]]:
    """An independent count: every record read back and bucketed here, one row at a time."""
    def in_month(when: dt.datetime) -> bool:
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        return f"{when.astimezone(LONDON):%Y-%m}" == month

    counts: dict[int, Counter[str]] = {}
    with ra.database.session() as session:
        batches = {b.id: b for b in session.scalars(select(DeviceCsrBatch))}
        for outcome in session.scalars(select(DeviceCsrOutcome)):
            batch = batches[outcome.batch_id]
            if in_month(batch.submitted_at):
                counts.setdefault(int(batch.party_id), Counter())["device_batched"] += 1
        for call in session.scalars(select(DeviceCsrTransaction)):
            if call.party_id is not None and in_month(call.received_at):
                counts.setdefault(int(call.party_id), Counter())["device_single"] += 1
        people = {p.id: p.organisation_id for p in session.scalars(select(Person))}
        for decision in session.scalars(select(CsrDecision)):
            if not in_month(decision.decided_at) or (decision.kind == "device" and decision.channel != "api"):
                continue
            subscriber = decision.subscriber_organisation_id or people[decision.person_id]
            kind = "organisation" if decision.kind == "organisation" else "device_single"
            counts.setdefault(subscriber, Counter())[kind] += 1
    return counts


def test_volumes_against_forecast_and_the_forecast_exceptions(
        ra: RegistrationAuthority, october: Population, clock: Clock) -> None:
    clock.now = at("2026-11-02T09:00:00")
    report = variance.build(ra.instance, "2026-10", now=clock.now)
    lines = {line.organisation_id: line for line in report.lines}
    alpha, beta, gamma = lines[october.supplier_a], lines[october.supplier_b], lines[october.network]
    assert (alpha.actual.device_single, alpha.actual.device_batched, alpha.actual.organisation) == (500, 600, 10)
    assert alpha.percent == 110 and alpha.exception == bands.HIGH
    assert beta.actual.device == 1099 and str(beta.percent) == "109.9" and beta.exception is None
    assert gamma.actual.device == 1 and gamma.exception == bands.NO_FORECAST
    assert gamma.forecast is not None and gamma.forecast.device == 0   # a forecast of nought is no forecast
    assert {line.organisation_id for line in report.exceptions} == {october.supplier_a, october.network}
    assert report.total_actual.device == 1100 + 1099 + 1
    assert report.total_forecast.device == 2000
    assert report.due_date == dt.date(2026, 11, 13)


def test_the_report_agrees_with_a_count_made_from_the_ledger(
        ra: RegistrationAuthority, october: Population, clock: Clock) -> None:
    report = variance.build(ra.instance, "2026-10", now=at("2026-11-02T09:00:00"))
    expected = count_from_the_ledger(ra, "2026-10")
    found = {line.organisation_id: Counter({k: v for k, v in vars(line.actual).items() if v})
             for line in report.lines if line.actual.device or line.actual.organisation}
    assert found == expected


def test_a_real_csr_through_the_ra_is_counted(ra: RegistrationAuthority, population: Population) -> None:
    from tests.ra.conftest import SUPPLIER_A_IS, org_csr_pem

    ra.submit_organisation_csr(ra.authenticate_token(population.aro_a.token), org_csr_pem(SUPPLIER_A_IS, "02"))
    month = f"{dt.datetime.now(LONDON):%Y-%m}"
    after = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    report = variance.build(ra.instance, month, now=after)
    line = next(line for line in report.lines if line.organisation_id == population.supplier_a)
    assert line.actual.organisation == 1 and line.exception is None   # no Device CSRs: no exception


def test_the_published_edition_redacts_the_exceptions_but_keeps_the_totals(
        ra: RegistrationAuthority, october: Population) -> None:
    full = variance.build(ra.instance, "2026-10", now=at("2026-11-02T09:00:00"))
    published = full.published(redact=True)
    names = {line.name for line in published.lines}
    assert "Alpha Energy Supply Ltd" not in names and "Gamma Distribution plc" not in names
    assert "Beta Power Ltd" in names
    assert all(line.organisation_id is None for line in published.exceptions)
    assert published.total_actual == full.total_actual and published.total_forecast == full.total_forecast
    assert full.published(redact=False).lines == full.lines


def test_a_month_not_yet_ended_cannot_be_reported(ra: RegistrationAuthority) -> None:
    from smki.core.errors import SmkiError

    with pytest.raises(SmkiError) as early:
        variance.build(ra.instance, "2026-10", now=at("2026-10-31T22:59:00"))   # 23:59 in London
    assert early.value.code == variance.MONTH_NOT_ENDED
    with pytest.raises(SmkiError) as bad:
        variance.build(ra.instance, "2026-13", now=at("2027-10-31T22:59:00"))
    assert bad.value.code == variance.BAD_MONTH


def with_policy(instance: Instance, tmp_path: Path, **changes: Any) -> Instance:
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    data = yaml.safe_load((policies / "variance.yaml").read_text())
    data.update(changes)
    (policies / "variance.yaml").write_text(yaml.safe_dump(data))
    settings = instance.settings
    return Instance(Settings(settings.instance_dir, settings.database_url, policies, settings.environment))


def test_mp160_flags_a_month_above_150_percent_of_the_trailing_average_without_a_notice(
        ra: RegistrationAuthority, population: Population, ledger: Ledger, clock: Clock, tmp_path: Path) -> None:
    a, b, network, other = population.supplier_a, population.supplier_b, population.network, population.other_user
    for month in range(4, 10):   # April to September 2026: 100 a month each for Alpha and Beta
        for party in (a, b):
            ledger.batch(party, at(f"2026-{month:02d}-10T10:00:00"), 100)
    ledger.batch(network, at("2026-06-10T10:00:00"), 600)           # Gamma: an average of 100 too
    ledger.batch(a, at("2026-10-10T10:00:00"), 151)                   # 151%: flagged
    ledger.batch(b, at("2026-10-10T10:00:00"), 150)                   # 150%: not more than 150%
    ledger.batch(network, at("2026-10-10T10:00:00"), 1000)            # far above, but notified
    ledger.adhoc(other, at("2026-10-10T10:00:00"), 1)                 # no history: any CSR is above it
    FormService(ra).submit("exceptional_demand_notice", {"organisation_id": network, "month": "2026-10",
                                                         "expected_device_csrs": 1000, "reason": "new estate"},
                           ra.authenticate_token(population.aro_network.token))
    mp160 = with_policy(ra.instance, tmp_path, regime="mp160")
    report = variance.build(mp160, "2026-10", now=at("2026-11-02T09:00:00"))
    flagged = {line.organisation_id for line in report.exceptions}
    assert flagged == {a, other}
    assert all(line.exception == variance.MP160 for line in report.exceptions)
    assert next(line for line in report.lines if line.organisation_id == a).trailing_average == 100
    assert next(line for line in report.lines if line.organisation_id == network).notice


def test_malformed_csrs_can_be_left_out_by_policy(
        ra: RegistrationAuthority, october: Population, tmp_path: Path) -> None:
    strict = with_policy(ra.instance, tmp_path, counting={"malformed": False})
    report = variance.build(strict, "2026-10", now=at("2026-11-02T09:00:00"))
    lines = {line.organisation_id: line for line in report.lines}
    assert lines[october.supplier_a].actual.device_batched == 550
    assert lines[october.network].actual.device == 0 and lines[october.network].exception is None


def test_a_malformed_csr_sent_to_the_ra_counts_once_for_the_senders_party(
        ra: RegistrationAuthority, population: Population, tmp_path: Path) -> None:
    """A CSR refused as malformed before any rule is still a CSR the Party sent: counted once, for the
    submitting ARO's Party, this month; ``counting.malformed: false`` leaves it out."""
    from smki.core.errors import SmkiError

    principal = ra.authenticate_token(population.aro_a.token)
    with pytest.raises(SmkiError):
        ra.submit_organisation_csr(principal, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                                   "-----END CERTIFICATE REQUEST-----")
    month = f"{dt.datetime.now(ZoneInfo('Europe/London')):%Y-%m}"
    ended = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    lines = {line.organisation_id: line for line in variance.build(ra.instance, month, now=ended).lines}
    assert lines[population.supplier_a].actual.organisation == 1
    strict = with_policy(ra.instance, tmp_path, counting={"malformed": False})
    lines = {line.organisation_id: line for line in variance.build(strict, month, now=ended).lines}
    assert population.supplier_a not in lines or lines[population.supplier_a].actual.organisation == 0
