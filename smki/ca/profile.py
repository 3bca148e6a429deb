"""Certificate and CRL profiles, read from ``policies/profiles/*.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from smki.core.errors import ConfigurationError
from smki.core.policy import load_yaml

CERTIFICATE_PROFILES = ("root_oca", "issuing_oca", "root_dca", "issuing_dca", "organisation", "device")
CRL_PROFILES = ("crl", "arl")


@dataclass(frozen=True)
class Validity:
    not_before: str                 # "start_of_day" or "now"
    years: int | None = None
    minus_seconds: int = 0
    not_after: str | None = None    # fixed, e.g. "99991231235959Z"
    time_encoding: str = "auto"     # "UTCTime" demands notAfter before 2050


@dataclass(frozen=True)
class SubjectAttribute:
    attribute: str
    string_type: str
    source: str | None = None       # a field of the request ("from" in the file)
    value: str | None = None        # a constant
    optional: bool = False


@dataclass(frozen=True)
class ExtensionSpec:
    type: str
    critical: bool
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CertificateProfile:
    name: str
    title: str
    issuer: str                     # a CA profile name, or "self"
    policy: str                     # "organisation" or "device": which environment OID
    serial_octets: int
    validity: Validity
    subject: tuple[SubjectAttribute, ...]
    extensions: tuple[ExtensionSpec, ...]

    @property
    def is_ca(self) -> bool:
        return any(e.type == "basicConstraints" and e.options.get("ca") for e in self.extensions)

    def extension(self, kind: str) -> ExtensionSpec | None:
        return next((e for e in self.extensions if e.type == kind), None)


@dataclass(frozen=True)
class CrlProfile:
    name: str
    title: str
    issuer: str
    next_update_hours: int
    publication_interval_hours: int
    extensions: tuple[ExtensionSpec, ...]
    entry_extensions: tuple[ExtensionSpec, ...]


def _extensions(items: list[dict[str, Any]]) -> tuple[ExtensionSpec, ...]:
    out = []
    for item in items:
        rest = {k: v for k, v in item.items() if k not in ("type", "critical")}
        out.append(ExtensionSpec(item["type"], bool(item["critical"]), rest))
    return tuple(out)


def _certificate_profile(data: dict[str, Any]) -> CertificateProfile:
    validity = data["validity"]
    return CertificateProfile(
        name=data["name"], title=data["title"], issuer=data["issuer"], policy=data["policy"],
        serial_octets=int(data["serial_octets"]),
        validity=Validity(validity["not_before"], validity.get("years"), int(validity.get("minus_seconds", 0)),
                          validity.get("not_after"), validity.get("time_encoding", "auto")),
        subject=tuple(SubjectAttribute(a["attribute"], a["string_type"], a.get("from"), a.get("value"),
                                       bool(a.get("optional", False))) for a in data.get("subject") or ()),
        extensions=_extensions(data["extensions"]),
    )


# GBCS section 12 rules for every certificate a device handles [V]. They are not policy: a profile that
# contradicts them is refused, so no edit of policies/ can make the CA issue what no meter will accept.
# (extension, must be present, required criticality)
GBCS_EXTENSION_RULES = (
    ("keyUsage", True, True),
    ("subjectKeyIdentifier", True, False),
    ("certificatePolicies", True, True),
    ("authorityKeyIdentifier", False, False),  # present on all but the self-signed root
)


def check_gbcs_rules(profile: CertificateProfile) -> None:
    for kind, required, critical in GBCS_EXTENSION_RULES:
        spec = profile.extension(kind)
        if spec is None:
            if required or (kind == "authorityKeyIdentifier" and profile.issuer != "self"):
                raise ConfigurationError("CA:CFG11", f"profile {profile.name} omits {kind}, which GBCS "
                                         "requires; the CA will not use it.")
        elif spec.critical != critical:
            raise ConfigurationError("CA:CFG11", f"profile {profile.name} makes {kind} "
                                     f"{'non-critical' if critical else 'critical'}; GBCS requires it "
                                     f"{'critical' if critical else 'non-critical'}. The CA will not use it.")


@cache
def load_certificate_profile(directory: Path, name: str) -> CertificateProfile:
    data = load_yaml(directory / "profiles" / f"{name}.yaml")
    try:
        profile = _certificate_profile(data)
    except (KeyError, TypeError) as exc:
        raise ConfigurationError("CA:CFG3", f"profile {name}.yaml is missing or misnames {exc}") from exc
    check_gbcs_rules(profile)
    return profile


@cache
def load_crl_profile(directory: Path, name: str) -> CrlProfile:
    data = load_yaml(directory / "profiles" / f"{name}.yaml")
    try:
        return CrlProfile(data["name"], data["title"], data["issuer"], int(data["next_update_hours"]),
                          int(data["publication_interval_hours"]), _extensions(data["extensions"]),
                          _extensions(data.get("entry_extensions") or []))
    except (KeyError, TypeError) as exc:
        raise ConfigurationError("CA:CFG3", f"profile {name}.yaml is missing or misnames {exc}") from exc
