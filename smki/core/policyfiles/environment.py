"""``environment.yaml``, ``environments/<name>.yaml``, ``roles.yaml`` and ``csr.yaml``: what every layer reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from cryptography import x509
from pydantic import AfterValidator, Field

from smki.core.policyfiles.base import (
    OID_TEXT,
    Eui64Value,
    Names,
    Oid,
    PolicyContext,
    PolicyModel,
    Problem,
    TupleOf,
    unknown,
)

KEY_USAGES = ("digitalSignature", "keyAgreement")
CA_NAMES = ("root_oca", "issuing_oca", "root_dca", "issuing_dca")
DCC_ROLES = ("recovery", "access_control_broker", "transitional_cos", "wan_provider")
KeyUsage = Literal["digitalSignature", "keyAgreement"]
EnvironmentName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]


class ActiveEnvironment(PolicyModel):
    """``environment.yaml``."""

    active: EnvironmentName
    """The environment in force unless SMKI_ENVIRONMENT names another: a file ``environments/<active>.yaml``."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        names = context.names("environments")
        if names is not None and self.active not in names:
            yield unknown(("active",), self.active, names, "the files in environments/")


class PolicyOids(PolicyModel):
    organisation: Oid
    """certificatePolicies OID of Organisation Certificates and the OCA certificates."""
    device: Oid
    """certificatePolicies OID of Device Certificates and the DCA certificates."""


def _exactly(*keys: str) -> AfterValidator:
    """A mapping with exactly these keys: the code looks each one up, and any other is a misspelling."""
    def check(mapping: dict[str, Any]) -> dict[str, Any]:
        missing, extra = sorted(set(keys) - set(mapping)), sorted(set(mapping) - set(keys))
        if missing or extra:
            found = [f"{what} {', '.join(names)}" for what, names in (("missing", missing), ("unknown", extra))
                     if names]
            raise ValueError(f"exactly the keys {', '.join(keys)} ({'; '.join(found)})")
        return mapping
    return AfterValidator(check)


CaNames = Annotated[dict[str, str], _exactly(*CA_NAMES)]
DccEntityIdentifiers = Annotated[dict[str, Eui64Value], _exactly(*DCC_ROLES)]


class Environment(PolicyModel):
    """``environments/<name>.yaml``: one environment's identifiers."""

    name: EnvironmentName
    """The environment's name; the same as the file's."""
    description: str = ""
    """For people."""
    policy_oids: PolicyOids
    hardware_module_type: Oid
    """hwType of the HardwareModuleName in Device Certificates."""
    ca_names: CaNames
    """The common names of the sandbox's four CAs."""
    dcc_entity_identifiers: DccEntityIdentifiers
    """The EUI-64 Entity Identifiers of the DCC's own roles."""

    @property
    def organisation_policy(self) -> x509.ObjectIdentifier:
        return self.policy_oids.organisation

    @property
    def device_policy(self) -> x509.ObjectIdentifier:
        return self.policy_oids.device

    def policy_oid(self, which: str) -> x509.ObjectIdentifier:
        return {"organisation": self.organisation_policy, "device": self.device_policy}[which]

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if context.stem and self.name != context.stem:
            yield Problem(("name",), f"{context.stem!r}, the name of the file", self.name)


class RemotePartyRole(PolicyModel):
    code: Annotated[int, Field(ge=0, le=255)]
    """The GBCS RemotePartyRole number."""
    ou: Annotated[str, Field(pattern=r"^[0-9A-F]{2}$")]
    """The subject OU: the code as two upper-case hexadecimal digits."""
    name: Annotated[str, Field(min_length=1)]
    """The role's GBCS name, as eligibility.yaml names it."""
    usages: TupleOf[KeyUsage] = ()
    """The key usages a Subscriber may be certified for in this role."""
    ca: bool = False
    """A CA role, never issued against a Subscriber's CSR."""

    @property
    def end_entity(self) -> bool:
        return not self.ca


class RoleCatalogue(PolicyModel):
    """``roles.yaml``."""

    roles: TupleOf[RemotePartyRole]

    def by_ou(self, ou: str) -> RemotePartyRole | None:
        return next((r for r in self.roles if r.ou == ou), None)

    def by_name(self, name: str) -> RemotePartyRole | None:
        return next((r for r in self.roles if r.name == name), None)

    def by_code(self, code: int) -> RemotePartyRole | None:
        return next((r for r in self.roles if r.code == code), None)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.roles)

    @property
    def end_entity_names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.roles if r.end_entity)

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        seen: dict[tuple[str, object], int] = {}
        for index, role in enumerate(self.roles):
            if role.ou != f"{role.code:02X}":
                yield Problem(("roles", index, "ou"), f"{role.code:02X}, the code {role.code} in hexadecimal",
                              role.ou)
            for key in ("code", "ou", "name"):
                value = getattr(role, key)
                if (key, value) in seen:
                    yield Problem(("roles", index, key), f"a {key} no other role has (roles[{seen[key, value]}] "
                                  "has it too)", value)
                seen.setdefault((key, value), index)


class CsrPolicy(PolicyModel):
    """``csr.yaml``: what the CSR validator accepts."""

    max_size_bytes: Annotated[int, Field(gt=0)] = 65536
    """Larger requests are refused before parsing (FM:CSR02)."""
    curve: Literal["secp256r1"] = "secp256r1"
    """GBCS: NIST P-256 only."""
    point_format: Literal["uncompressed"] = "uncompressed"
    """GBCS: uncompressed points only."""
    signature_algorithm: Annotated[str, Field(pattern=f"^{OID_TEXT.pattern}$")] = "1.2.840.10045.4.3.2"
    """ecdsa-with-SHA256."""
    pem_labels: Annotated[Names, Field(min_length=1)] = ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
    """PEM armour labels accepted."""
