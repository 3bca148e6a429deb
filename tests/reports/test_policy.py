"""``policies/variance.yaml``: read strictly, every bad key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.errors import ConfigurationError
from smki.core.policy import load_variance_policy
from smki.core.policyfiles.base import parse_policy
from smki.core.policyfiles.variance import VariancePolicy


def test_the_shipped_policy_is_the_l8_9_regime() -> None:
    policy = load_variance_policy(DEFAULT_POLICIES_DIR)
    assert policy.regime == "l8_9" and policy.forecast_exception.high == 110 and policy.due_working_day == 10
    assert (policy.service_request.low, policy.service_request.high) == (90, 110)


@pytest.mark.parametrize(("data", "said"), [
    ({"regime": "monthly"}, "regime"),
    ({"service_request": {"high": 90, "low": 110}}, "service_request.low"),
    ({"working_days": {"country": "GB", "subdivision": "XX"}}, "working_days.subdivision"),
    ({"timezone": "Europe/Atlantis"}, "timezone"),
    ({"due_working_days": 10}, "due_working_days"),
])
def test_a_bad_policy_is_refused_naming_the_key(data: dict[str, object], said: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_policy(data, Path("variance.yaml"), VariancePolicy)
    assert said in refused.value.message
