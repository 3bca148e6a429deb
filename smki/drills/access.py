"""Who may start and read recovery drills (issue 14): the SMKI PMA, the DCC's operators and the Code
Administrator. Everyone else is refused with ``AZ:DRL01``, and cannot tell which drills exist."""

from __future__ import annotations

from smki.core.errors import SmkiError
from smki.ra.identity import Principal

NOT_PERMITTED = "AZ:DRL01"
# RA appointments that may run drills wherever their holder works; and the DCC's category: every person of the
# DCC Party is a DCC operator here.
DRILL_APPOINTMENTS = ("pma", "code_admin")
DCC_CATEGORY = "dcc"


class DrillsNotPermitted(SmkiError):
    status = 403


def may_run_drills(principal: Principal) -> bool:
    return principal.organisation_category == DCC_CATEGORY or any(
        principal.holds(role) is not None for role in DRILL_APPOINTMENTS)


def require_drill_role(principal: Principal) -> Principal:
    if not may_run_drills(principal):
        raise DrillsNotPermitted(NOT_PERMITTED, "only the SMKI PMA, a DCC operator or the Code Administrator may "
                                 "start or read recovery drills.")
    return principal
