"""Validity: the encodings the profile asks for, and RFC 5280 4.1.2.5."""

from __future__ import annotations

import re
from collections.abc import Iterator

from smki.lint.findings import Finding, finding
from smki.lint.model import CertificateView, LintContext

UTC_TIME_FORM = re.compile(rb"^\d{12}Z$")
GENERALIZED_TIME_FORM = re.compile(rb"^\d{14}Z$")
GENERALIZED_TIME_FROM_YEAR = 2050
FIELDS = (("not_before", "notBefore"), ("not_after", "notAfter"))


def encodings(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    validity = view.tbs["validity"]
    profile = context.profile.validity if context.profile else None
    for key, field in FIELDS:
        time = validity[key]
        raw = bytes(time.chosen.contents)
        utc = time.name == "utc_time"
        if not (UTC_TIME_FORM if utc else GENERALIZED_TIME_FORM).match(raw):
            yield finding("LN:VAL05", f"{field} {raw.decode(errors='replace')!r} is not in DER form", field)
            continue
        if key == "not_after" and profile is not None and profile.not_after is not None:
            if utc or raw.decode() != profile.not_after:
                yield finding("LN:VAL03", f"notAfter is {raw.decode()} ({time.name}); the profile fixes "
                              f"GeneralizedTime {profile.not_after}", field)
            continue
        if profile is not None and profile.time_encoding == "UTCTime" and not utc:
            yield finding("LN:VAL01", f"{field} is GeneralizedTime {raw.decode()}; the profile wants UTCTime",
                          field)
            continue
        year = time.native.year
        if utc == (year >= GENERALIZED_TIME_FROM_YEAR):
            yield finding("LN:VAL02", f"{field} year {year} is encoded as {time.name}; RFC 5280 wants UTCTime "
                          "until 2049 and GeneralizedTime from 2050", field)


def order(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    validity = view.tbs["validity"]
    if validity["not_before"].native > validity["not_after"].native:
        yield finding("LN:VAL04", "notBefore is after notAfter", "validity")
