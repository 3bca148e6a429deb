"""Building CS02b messages from their parts: what the RA, a drill or a simulated device calls.

Each builder returns an unsigned value; :func:`smki.gbcs.sign` signs it and
:func:`smki.gbcs.wrap_with_mac` adds the ACB's MAC where the mode needs one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from smki.core.eui64 import Eui64
from smki.gbcs.errors import INVALID_VALUE, gbcs_error
from smki.gbcs.framing import DATE_TIME_LENGTH
from smki.gbcs.values import (
    CS02B_ALERT_MESSAGE_CODE,
    CraFlag,
    ExecutionOutcome,
    GeneralSigning,
    GroupingHeader,
    LengthEncoding,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
)

ALERT_FUTURE_DATED_SUCCESS = 0x8F66
ALERT_FUTURE_DATED_FAILURE = 0x8F67
_NOT_SPECIFIED = 0xFF
_DEVIATION_NOT_SPECIFIED = b"\x80\x00"


def command(originator: Eui64, target: Eui64, originator_counter: int,
            payload: UpdateSecurityCredentials) -> GeneralSigning:
    """The pre-command: the General Signing APDU before its originator signs it."""
    header = GroupingHeader(cra_flag=CraFlag.COMMAND, originator_counter=originator_counter,
                            business_originator=originator, business_target=target,
                            message_code=payload.mode.message_code)
    return GeneralSigning(header=header, payload=payload, pre_command=True)


def response(to: GroupingHeader, outcome: ExecutionOutcome | None, at: datetime | None = None,
             length_encoding: LengthEncoding = LengthEncoding.DER) -> GeneralSigning:
    """A device's response to the command whose header is ``to`` (unsigned: the device signs it)."""
    return GeneralSigning(header=response_header(to, at), payload=UpdateSecurityCredentialsResponse(outcome),
                          length_encoding=length_encoding)


def response_header(to: GroupingHeader, at: datetime | None = None) -> GroupingHeader:
    """The header of a device's response to the command whose header is ``to``: from the device, to the
    command's originator, answering its counter, dated ``at`` (now)."""
    return GroupingHeader(cra_flag=CraFlag.RESPONSE, originator_counter=to.originator_counter,
                          business_originator=to.business_target, business_target=to.business_originator,
                          message_code=to.message_code, date_time=dlms_date_time(at or datetime.now(UTC)))


def alert(device: Eui64, to: Eui64, alert_counter: int, executed_at: datetime, outcome: ExecutionOutcome,
          alert_code: int = ALERT_FUTURE_DATED_SUCCESS,
          length_encoding: LengthEncoding = LengthEncoding.DER) -> GeneralSigning:
    """The alert a device raises when a future-dated command runs (unsigned)."""
    header = GroupingHeader(cra_flag=CraFlag.ALERT, originator_counter=alert_counter, business_originator=device,
                            business_target=to, message_code=CS02B_ALERT_MESSAGE_CODE)
    return GeneralSigning(header=header, payload=UpdateSecurityCredentialsAlert(alert_code, executed_at, outcome),
                          length_encoding=length_encoding)


def dlms_date_time(moment: datetime) -> bytes:
    """A DLMS date-time in UTC, written as the RTDS devices write it (day of week, deviation and clock
    status left 'not specified')."""
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise gbcs_error(INVALID_VALUE, "a date-time must be a timezone-aware datetime")
    return _dlms_date_time(moment)


@lru_cache(maxsize=64)
def _dlms_date_time(moment: datetime) -> bytes:
    # Cached: the devices of a delivery all answer at the delivery's moment.
    utc = moment.astimezone(UTC)
    return (utc.year.to_bytes(2, "big") + bytes((utc.month, utc.day, _NOT_SPECIFIED, utc.hour, utc.minute,
                                                 utc.second, utc.microsecond // 10_000))
            + _DEVIATION_NOT_SPECIFIED + bytes((_NOT_SPECIFIED,)))


def parse_dlms_date_time(octets: bytes) -> datetime | None:
    """The moment a DLMS date-time names, or None when a field is 'not specified' or out of range."""
    if len(octets) != DATE_TIME_LENGTH:
        return None
    year = int.from_bytes(octets[:2], "big")
    month, day, _dow, hour, minute, second, hundredths = octets[2:9]
    try:
        return datetime(year, month, day, hour, minute, second, hundredths * 10_000 if hundredths < 100 else 0,
                        tzinfo=UTC)
    except ValueError:
        return None
