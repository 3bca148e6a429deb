"""Key Custodians are nominated on a RAPP form like any other: the SRO submits, the RA verifies and
approves, and the appointment it makes is what custody accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.errors import ConfigurationError
from smki.core.policyfiles.base import parse_policy
from smki.core.policyfiles.custody import CustodyPolicy
from smki.ra.forms import FormService
from smki.ra.service import RegistrationAuthority
from smki.recovery.custody import Custodian
from smki.recovery.errors import CustodyRefused
from smki.recovery.intake import take_into_custody
from tests.recovery.conftest import PASSPHRASES, Custodians

CHECKS = {"identity_verified": True, "screening_passed": True, "employed_by_party": True}


def nominate(ra: RegistrationAuthority, custodians: Custodians, name: str) -> int:
    forms = FormService(ra)
    sro = ra.authenticate_token(custodians.sro_a.token)
    operator = ra.authenticate_token(custodians.operator.token)
    submission, _ = forms.submit("key_custodian_nomination", {"organisation_id": custodians.party_a, "name": name,
                                                              "email": "kc@alpha.example"}, sro)
    with pytest.raises(Exception, match="WF:FRM0"):  # approval waits for the RA's verification
        forms.approve(submission.id, operator)
    forms.verify(submission.id, operator, CHECKS)
    approved, secrets = forms.approve(submission.id, operator)
    assert approved.status == "approved" and secrets == {}  # a custodian gets no API token from this form
    assert approved.result is not None
    return int(approved.result["appointment_id"])


def test_a_nominated_and_approved_custodian_takes_a_share(ra: RegistrationAuthority, custodians: Custodians) -> None:
    appointment = nominate(ra, custodians, "Nina Nominee")
    chosen = [*custodians.all()[1:], Custodian(appointment, PASSPHRASES[0])]
    issued = take_into_custody(ra.instance, "recovery", chosen, "dcc:officer")
    assert appointment in [share.appointment_id for share in issued]


def test_a_rejected_nomination_makes_no_custodian(ra: RegistrationAuthority, custodians: Custodians) -> None:
    forms = FormService(ra)
    sro = ra.authenticate_token(custodians.sro_a.token)
    payload = {"organisation_id": custodians.party_a, "name": "Rex Rejected", "email": "rex@alpha.example"}
    submission, _ = forms.submit("key_custodian_nomination", payload, sro)
    forms.reject(submission.id, ra.authenticate_token(custodians.operator.token), "screening not passed")
    assert submission.id  # no appointment exists to name; custody refuses an unknown one
    with pytest.raises(CustodyRefused, match="RC:CUS01"):
        take_into_custody(ra.instance, "recovery", [*custodians.all()[1:], Custodian(999_999, PASSPHRASES[0])],
                          "dcc:officer")


def test_the_shipped_policy_is_three_of_five_from_two_parties() -> None:
    from smki.core.policy import load_custody_policy

    policy = load_custody_policy(DEFAULT_POLICIES_DIR)
    assert (policy.threshold, policy.shares, policy.minimum_organisations) == (3, 5, 2)


@pytest.mark.parametrize("data", [{"threshold": 6, "shares": 5}, {"threshold": 1, "shares": 5},
                                  {"shares": 3, "minimum_organisations": 4}, {"threshold": "three"}])
def test_an_impossible_quorum_stops_the_start(data: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_policy(data, tmp_path / "custody.yaml", CustodyPolicy)
    assert "custody.yaml" in caught.value.message
