"""``eligibility.yaml`` (who may obtain what) and ``ra.yaml`` (allocation, tokens, IKI CA, revocation)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Literal

from pydantic import Field

from smki.core.errors import CODE_PATTERN, ConfigurationError
from smki.core.policyfiles.base import Names, PolicyContext, PolicyModel, Problem, Section, TupleOf, unknown

ROLES = "roles"                              # PolicyContext: Remote Party Role names from roles.yaml
END_ENTITY_ROLES = "end_entity_roles"
REPOSITORY_REASONS = "repository_reasons"    # PolicyContext: the revocation reasons repository.yaml maps
DeviceState = Literal["pre_installation", "installed", "decommissioned"]
ProvisioningPermission = Literal["any_authorised_subscriber", "responsible_supplier", "dcc_if_dcc_owned"]
RefusalCode = Annotated[str, Field(pattern=CODE_PATTERN.pattern, max_length=10)]


class OrganisationRoleRule(PolicyModel):
    rule: Annotated[str, Field(min_length=1)]
    """The rule name recorded in decisions."""
    user_roles: Names = ()
    """User Roles whose own User ID may be certified in this Remote Party Role."""
    authorised_parties: Names = ()
    """Parties allowed the role by name, whatever their User Roles."""


class DccOnly(PolicyModel):
    rule: Annotated[str, Field(min_length=1)]
    """The rule name recorded in decisions."""
    roles: Names
    """Remote Party Roles held by the DCC alone, for its own entity identifiers."""


class OrganisationRules(PolicyModel):
    require_srept: bool = True
    """A Party must pass SREPT before it may become an Authorised Subscriber [V]."""
    require_srept_for_repository: bool = True
    """... and before its AROs get Repository credentials (or while it rehearses SREPT) [V]."""
    remote_party_roles: dict[str, OrganisationRoleRule]
    """Remote Party Role name (roles.yaml) -> who may be certified in it."""
    dcc_only: DccOnly


class AdHocRules(PolicyModel):
    user_roles: Names = ("IS", "GS")
    """User Roles that may use the ad hoc Device CSR service [V]."""
    dcc: bool = True
    """The DCC may use it too [V]."""
    replacement_only: bool = True
    """Only for a device that already has a certificate [V]."""


class DeviceRules(PolicyModel):
    require_authorised_subscriber: bool = True
    """Only an Authorised Subscriber for Device Certificates may submit Device CSRs [V]."""
    max_certificates_per_device: Annotated[int, Field(gt=0)] = 100
    """Fewer than this many Device Certificates may exist per Device ID [V]."""
    provisioning_states: dict[DeviceState, TupleOf[ProvisioningPermission]]
    """Device state -> who may obtain its certificates."""
    manufacturer_direct_issuance: bool = False
    """A manufacturer never obtains Device Certificates in its own name [V]."""
    ad_hoc: AdHocRules = AdHocRules()


class Eligibility(PolicyModel):
    """``eligibility.yaml``: the RA's eligibility rules and the refusal code of each rule."""

    party_categories: Names
    """Party categories (rapp.md "Actors") [V]."""
    non_party_categories: Names
    """Organisations that are not Parties (manufacturers) and never Subscribers in their own name."""
    user_roles: Names
    """User Roles a Party may hold."""
    organisation: OrganisationRules
    device: DeviceRules
    codes: dict[str, RefusalCode]
    """Rule name -> the code a refusal under it carries."""

    # The RA reads the rules through these names.
    @property
    def require_srept(self) -> bool:
        return self.organisation.require_srept

    @property
    def require_srept_for_repository(self) -> bool:
        return self.organisation.require_srept_for_repository

    @property
    def organisation_roles(self) -> Mapping[str, OrganisationRoleRule]:
        return self.organisation.remote_party_roles

    @property
    def dcc_only_rule(self) -> str:
        return self.organisation.dcc_only.rule

    @property
    def dcc_only_roles(self) -> tuple[str, ...]:
        return self.organisation.dcc_only.roles

    @property
    def device_require_authorised(self) -> bool:
        return self.device.require_authorised_subscriber

    @property
    def max_certificates_per_device(self) -> int:
        return self.device.max_certificates_per_device

    @property
    def provisioning_states(self) -> Mapping[str, tuple[str, ...]]:
        return {str(state): allowed for state, allowed in self.device.provisioning_states.items()}

    @property
    def manufacturer_direct_issuance(self) -> bool:
        return self.device.manufacturer_direct_issuance

    @property
    def ad_hoc_user_roles(self) -> tuple[str, ...]:
        return self.device.ad_hoc.user_roles

    @property
    def ad_hoc_dcc(self) -> bool:
        return self.device.ad_hoc.dcc

    @property
    def ad_hoc_replacement_only(self) -> bool:
        return self.device.ad_hoc.replacement_only

    def code(self, rule: str) -> str:
        try:
            return self.codes[rule]
        except KeyError as exc:
            raise ConfigurationError("CA:CFG4", f"policies/eligibility.yaml gives no code for rule {rule}") from exc

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        roles, end_entity = context.names(ROLES), context.names(END_ENTITY_ROLES)
        organisation = ("organisation",)
        for name, rule in self.organisation.remote_party_roles.items():
            where = (*organisation, "remote_party_roles", name)
            if end_entity is not None and name not in end_entity:
                yield unknown((*where, "[key]"), name, end_entity, "the end-entity Remote Party Roles in roles.yaml")
            yield from self._user_roles((*where, "user_roles"), rule.user_roles)
            if rule.rule not in self.codes and "org.role" not in self.codes:
                yield Problem((*where, "rule"), "a rule with a refusal code under codes (or a code for org.role)",
                              rule.rule)
        for index, name in enumerate(self.organisation.dcc_only.roles):
            if roles is not None and name not in roles:
                yield unknown((*organisation, "dcc_only", "roles", index), name, roles,
                              "the Remote Party Roles in roles.yaml")
            if name in self.organisation.remote_party_roles:
                yield Problem((*organisation, "dcc_only", "roles", index), "a role not also open to Subscribers "
                              "under remote_party_roles", name)
        if self.organisation.dcc_only.rule not in self.codes:
            yield Problem((*organisation, "dcc_only", "rule"), "a rule with a refusal code under codes",
                          self.organisation.dcc_only.rule)
        yield from self._user_roles(("device", "ad_hoc", "user_roles"), self.device.ad_hoc.user_roles)
        if "pre_installation" not in self.device.provisioning_states:
            yield Problem(("device", "provisioning_states"), "an entry for pre_installation, the state of a device "
                          "the RA has no record of")
        overlap = set(self.party_categories) & set(self.non_party_categories)
        if overlap:
            yield Problem(("non_party_categories",), "categories that are not also Party categories",
                          sorted(overlap))

    def _user_roles(self, loc: tuple[str | int, ...], named: tuple[str, ...]) -> Iterator[Problem]:
        for index, role in enumerate(named):
            if role not in self.user_roles:
                yield unknown((*loc, index), role, self.user_roles, "the User Roles listed under user_roles")


class IkiCa(Section):
    ca_name: Annotated[str, Field(min_length=1)] = "SMKI Sandbox IKI CA"
    """The sandbox IKI CA's common name (a CA apart from the SMKI hierarchy)."""
    client_validity_days: Annotated[int, Field(gt=0)] = 730
    """Validity of IKI client certificates."""
    ca_validity_days: Annotated[int, Field(gt=0)] = 3650
    """Validity of the IKI CA certificate."""


class RaPolicy(PolicyModel):
    """``ra.yaml``: Registration Authority settings."""

    user_id_prefix: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{10}$")] = "90B3D51F31"
    """The first 5 octets of EUI-64 User IDs the sandbox allocates; the last 3 count up."""
    api_token_bytes: Annotated[int, Field(ge=16, le=256)] = 32
    """Bytes of randomness in an API token (only its SHA-256 is stored)."""
    iki: IkiCa = IkiCa()
    revocation_requesters: Names = ("dcc", "pma")
    """Who may request revocation of an Organisation Certificate besides an ARO of the subject's Party [V]."""
    revocation_reasons: dict[str, str]
    """Reason a Certificate Revocation Request may give -> the Repository's name for it (repository.yaml)."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if self.iki.client_validity_days > self.iki.ca_validity_days:
            yield Problem(("iki", "client_validity_days"), f"at most ca_validity_days ({self.iki.ca_validity_days})",
                          self.iki.client_validity_days)
        known = context.names(REPOSITORY_REASONS)
        for reason, name in self.revocation_reasons.items():
            if known is not None and name not in known:
                yield unknown(("revocation_reasons", reason), name, known,
                              "the reasons repository.yaml maps under revocation_reasons")
