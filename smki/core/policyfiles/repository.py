"""``repository.yaml``: the SMKI Repository's lists, reasons, schedules, log-in rules and limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from smki.core.policyfiles.base import PolicyContext, PolicyModel, Problem, Section

KINDS = ("organisation", "device", "oca", "dca")
CertificateKind = Literal["organisation", "device", "oca", "dca"]
# RFC 5280 CRLReason names (as cryptography's ReasonFlags values spell them)
RFC5280_REASONS = ("unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
                   "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise")
UNKNOWN_REASON = "CA:CFG10"
Positive = Annotated[int, Field(gt=0)]


class Publication(Section):
    debounce_seconds: Annotated[float, Field(ge=0)] = 30
    """After a revocation, publish once no further revocation has arrived for this long..."""
    max_delay_seconds: Annotated[float, Field(ge=0)] = 300
    """... but never later than this after the first."""
    check_interval_seconds: Annotated[float, Field(gt=0)] = 15
    """How often the publisher checks whether a list is due."""
    expiry_sweep_minutes: Annotated[float, Field(gt=0)] = 60
    """How often certificates past notAfter are marked E."""
    reconcile_minutes: Annotated[float, Field(gt=0)] = 10
    """How often the publisher lodges released certificates the Repository lacks."""
    reconcile_window_hours: Annotated[float, Field(gt=0)] = 48
    """How far back it looks."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if self.max_delay_seconds < self.debounce_seconds:
            yield Problem(("publication", "max_delay_seconds"), f"at least debounce_seconds ({self.debounce_seconds})",
                          self.max_delay_seconds)


class CronSchedule(Section):
    """When an extract is cut (UTC); absent fields mean every (APScheduler cron)."""

    day_of_week: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None
    """null: every day."""
    hour: Annotated[int, Field(ge=0, le=23)] = 0
    minute: Annotated[int, Field(ge=0, le=59)] = 0


class Extracts(Section):
    directory: Annotated[str, Field(min_length=1)] = "repository/extracts"
    """Where extracts are written, under the instance folder."""
    full: CronSchedule = CronSchedule(day_of_week="sun", hour=0, minute=30)
    """The weekly full extract (MP147); absent: Sundays 00:30 UTC."""
    delta: CronSchedule = CronSchedule(hour=1, minute=0)
    """The daily delta; absent: 01:00 UTC."""
    settle_seconds: Annotated[int, Field(ge=0)] = 300
    """A delta covers changes up to this long before it is cut."""


class Scrypt(Section):
    n: Annotated[int, Field(ge=2)] = 16384
    r: Positive = 8
    p: Positive = 1

    @field_validator("n")
    @classmethod
    def _power_of_two(cls, n: int) -> int:
        if n & (n - 1):
            raise ValueError("a power of two, such as 16384")
        return n


class Access(Section):
    lockout_failures: Positive = 5
    """Failed log-ins within the window that lock the account [V]."""
    lockout_window_minutes: Positive = 60
    """The window those failures are counted in [V]."""
    lockout_minutes: Positive = 60
    """How long the account then stays locked [V]."""
    session_minutes: Positive = 30
    """A portal session ends this long after log-in."""
    scrypt: Scrypt = Scrypt()
    """Password hashing cost (n a power of two)."""


class RequestLog(Section):
    """The web service's request log, written in batches off the request path (``repository.request_log``)."""

    flush_rows: Positive = 200
    """Write when this many rows wait ..."""
    flush_seconds: Annotated[float, Field(ge=0)] = 0.5
    """... or this long after the first; 0 writes each row before the answer (durable, one commit each)."""
    max_pending: Positive = 20000
    """Past this many waiting rows, requests write the batch themselves."""


class WebService(Section):
    max_body_bytes: Positive = 65536
    """Larger Appendix O requests are refused."""
    max_results: Positive = 1000
    """Most results one Appendix O search answers."""
    page_size: Positive = 100
    """JSON API page size when the caller gives none."""
    max_page_size: Positive = 1000
    """Largest JSON API page a caller may ask for."""
    request_log: RequestLog = RequestLog()


class DccBoxed(Section):
    port: Annotated[int, Field(ge=1, le=65535)] = 8083
    """The second port ``smki serve --dccboxed`` binds."""
    default_api_key: Annotated[str, Field(min_length=1)] = "u3bg9gt38htd0j2"
    """DCC Boxed's published default API key, accepted only in compatibility mode."""
    holder: Annotated[str, Field(min_length=1)] = "dccboxed-default"
    """Who requests made with that key are recorded as."""


def _rfc5280(reason: str) -> str:
    if reason not in RFC5280_REASONS:
        raise PydanticCustomError(UNKNOWN_REASON, "one of the RFC 5280 reasons ({reasons})",
                                  {"reasons": ", ".join(RFC5280_REASONS)})
    return reason


class RepositorySettings(PolicyModel):
    """``repository.yaml``."""

    revocation_lists: dict[CertificateKind, Literal["crl", "arl"] | None] = Field(default_factory=dict,
                                                                                validate_default=True)
    """Certificate kind -> the list (CRL profile) that carries it when revoked; null or absent: none."""
    revocation_reasons: dict[str, Annotated[str, AfterValidator(_rfc5280)]]
    """Reason a request may give -> its RFC 5280 CRLReason name."""
    publication: Publication = Publication()
    extracts: Extracts = Extracts()
    access: Access = Access()
    web_service: WebService = WebService()
    dccboxed: DccBoxed = DccBoxed()

    @field_validator("revocation_lists")
    @classmethod
    def _every_kind(cls, lists: dict[str, str | None]) -> dict[str, str | None]:
        return {kind: lists.get(kind) for kind in KINDS}

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        yield from self.publication.problems(context)
        if self.web_service.page_size > self.web_service.max_page_size:
            yield Problem(("web_service", "page_size"), f"at most max_page_size ({self.web_service.max_page_size})",
                          self.web_service.page_size)
