"""``policies/recovery/<scenario>.yaml``: one SMKI Recovery Procedure scenario (SEC L10, Appendix L) as data,
for the drill runner (:mod:`smki.drills`, docs/drills.md).

A scenario names the key it supposes compromised, and its three phases (Pre-Recovery, Execution,
Post-Recovery), each an ordered list of steps. A step names its actor (a role: the compromised Party, the DCC,
the SMKI PMA, the Key Custodians, the CA, the devices, the Panel), its action from a fixed vocabulary the
runner implements, the steps that must have happened before it, its target duration, and whether its place
in the procedure is verified from a public source (``V``) or assumed (``A``), as recovery.md marks them.

Loaded like every policy file (:func:`smki.core.policyfiles.base.read_policy_file`): a bad file fails at load
with a coded :class:`~smki.core.errors.ConfigurationError` naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from smki.core.errors import ConfigurationError
from smki.core.policyfiles.base import PolicyContext, PolicyModel, Problem, TupleOf, read_policy_file

BAD_SCENARIO = "CA:CFG50"       # a scenario file that is not as described
UNKNOWN_SCENARIO = "CA:CFG51"   # no such scenario file
FOLDER = "recovery"

PHASES = ("Pre-Recovery", "Execution", "Post-Recovery")
Actor = Literal["party", "dcc", "pma", "custodians", "ca", "devices", "panel"]
Confidence = Literal["A", "V"]
KeyName = Literal["recovery", "contingency"]
CompromisedKey = Literal["organisation", "acb", "wan_provider", "transitional_cos", "issuing_oca", "root_oca",
                         "contingency", "recovery"]
SendMode = Literal["supplier", "networkOperator", "recovery", "contingency"]
CellRole = Literal["root", "recovery", "supplier", "networkOperator", "accessControlBroker", "transitionalCoS",
                   "wanProvider"]
OrgUsage = Literal["digitalSignature", "keyAgreement"]
Minutes = Annotated[float, Field(gt=0)]
StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# Which key signs each mode's commands (a ceremony of its custodians when it is the Recovery or Contingency key).
MODE_KEY: dict[str, str | None] = {"recovery": "recovery", "contingency": "contingency", "supplier": None,
                                   "networkOperator": None}


class Compromise(PolicyModel):
    """The key the scenario supposes compromised."""

    key: CompromisedKey
    """organisation (a Subscriber's Organisation key), acb, wan_provider, transitional_cos (the DCC's
    Organisation keys), issuing_oca, root_oca, contingency (the Contingency key or its symmetric key), recovery."""
    party: str | None = None
    """For an Organisation key: the drill Party's category whose key it is (large_supplier, small_supplier,
    electricity_network, gas_network, dcc)."""
    role: CellRole | None = None
    """For an Organisation key: the Remote Party Role of its certificates (supplier, networkOperator, ...)."""
    usages: TupleOf[OrgUsage] = ("digitalSignature", "keyAgreement")
    """For an Organisation key: which of the Party's certificates for the role are compromised."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        organisation_keys = {"organisation": None, "acb": "accessControlBroker", "wan_provider": "wanProvider",
                             "transitional_cos": "transitionalCoS"}
        if self.key in organisation_keys and self.role is None:
            yield Problem(("compromised", "role"), "the Remote Party Role of the compromised certificates")
        if self.key == "organisation" and self.party is None:
            yield Problem(("compromised", "party"), "the category of the Party whose key is compromised")
        if self.key not in organisation_keys and (self.party or self.role):
            yield Problem(("compromised",), "no party or role for a CA, Recovery or Contingency key",
                          {"party": self.party, "role": self.role})


class CeremonyUse(PolicyModel):
    """The step runs inside a key ceremony: a quorum of Key Custodians reconstructs this key, under a decision
    of the SMKI PMA recorded earlier, for this step only."""

    key: KeyName


class SendSpec(PolicyModel):
    """CS02b Update Security Credentials commands to every device still holding the compromised key."""

    mode: SendMode
    """supplier (2), networkOperator (3), recovery (8), contingency (9)."""
    roles: TupleOf[CellRole]
    """The cells' Remote Party Roles the commands replace."""
    placements: dict[str, str] | None = None
    """What is placed: none (the newest certificate of each cell's holder), {role: acb} (the DCC's Access
    Control Broker certificate, method 2), {root: new} (the Root OCA the step made, mode 9) or {root: current}
    (the root devices hold, placed again: mode 9 must place a root to replace any other cell)."""
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    """How many times the devices not recovered are sent the command again before escalation."""
    escalate_to: SendSpec | None = None
    """The command the devices this one could not recover get next (method 1 -> method 3)."""
    ceremony: CeremonyUse | None = None
    """The key ceremony the command needs (modes 8 and 9)."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        for role, value in (self.placements or {}).items():
            allowed = ("new", "current") if role == "root" else ("acb",)
            if value not in allowed:
                yield Problem(("placements", role), f"one of {', '.join(allowed)}", value)
        if (self.mode == "contingency") != ("root" in (self.placements or {})):
            yield Problem(("placements",), "placements: {root: new|current} for mode contingency, and only for it",
                          self.placements)
        wanted = MODE_KEY[self.mode]
        have = self.ceremony.key if self.ceremony else None
        if wanted != have:
            yield Problem(("ceremony",), f"ceremony key {wanted or 'none'} for mode {self.mode}", have)
        if self.escalate_to is not None:
            yield from (Problem(("escalate_to", *p.loc), p.expected, p.found, p.code, p.what)
                        for p in self.escalate_to.problems(context))


class Decision(PolicyModel):
    key: KeyName
    purpose: Literal["use", "new_key", "reshare"] = "use"


class StepBase(PolicyModel):
    id: StepId
    title: Annotated[str, Field(min_length=1)]
    actor: Actor
    confidence: Confidence = "A"
    """V: the step and its place are in a public source; A: assumed (recovery.md's [A])."""
    preconditions: TupleOf[StepId] = ()
    """Steps that must be done before this one starts."""
    target_minutes: Minutes | None = None


class NotifyCompromise(StepBase):
    action: Literal["notify_compromise"]


class DccConfirm(StepBase):
    action: Literal["dcc_confirm"]
    confirmed: bool = True
    """false: the DCC rejects the suspicion (the drill then ends after notifying)."""


class DccNotify(StepBase):
    action: Literal["dcc_notify"]


class PmaDecide(StepBase):
    action: Literal["pma_decide"]
    decisions: TupleOf[Decision] = ()
    """The Recovery or Contingency key uses the PMA sanctions (none: the Party recovers with its own keys)."""


class Revoke(StepBase):
    action: Literal["revoke"]


class NewIssuingOca(StepBase):
    action: Literal["new_issuing_oca"]
    recertify_recovery: bool = True
    """Certify the Recovery key again under the new Issuing OCA (its certificate was under the old one)."""


class NewRootOca(StepBase):
    """A new Root OCA (with a new wrapped Contingency key) and Issuing OCA, distributed to the devices under the
    OLD Contingency key released at the step's ceremony (mode 9), its new Contingency key taken into custody."""

    action: Literal["new_root_oca", "new_contingency_key"]
    ceremony: CeremonyUse
    distribute: SendSpec


class NewRecoveryKey(StepBase):
    action: Literal["new_recovery_key"]


class ResubmitCsrs(StepBase):
    action: Literal["resubmit_csrs"]
    scope: Literal["compromised", "all"] = "compromised"
    """compromised: the certificates of the compromised key; all: every Organisation Certificate devices hold
    (after a new Issuing OCA)."""


class SendCommands(StepBase):
    action: Literal["send_commands"]
    send: SendSpec


class ProgressReport(StepBase):
    action: Literal["progress_report"]


class PostRecoveryCheck(StepBase):
    action: Literal["post_recovery_check"]


Step = Annotated[NotifyCompromise | DccConfirm | DccNotify | PmaDecide | Revoke | NewIssuingOca | NewRootOca
                 | NewRecoveryKey | ResubmitCsrs | SendCommands | ProgressReport | PostRecoveryCheck,
                 Field(discriminator="action")]
ACTIONS = ("notify_compromise", "dcc_confirm", "dcc_notify", "pma_decide", "revoke", "new_issuing_oca",
           "new_root_oca", "new_contingency_key", "new_recovery_key", "resubmit_csrs", "send_commands",
           "progress_report", "post_recovery_check")


class Phase(PolicyModel):
    name: Literal["Pre-Recovery", "Execution", "Post-Recovery"]
    target_minutes: Minutes | None = None
    steps: TupleOf[Step] = Field(min_length=1)


class Faults(PolicyModel):
    """Faults injected into devices the compromise affects, chosen from the seed: those devices are what the
    drill must name as residual exposure (offline, busy, tampered) or recover by escalation (command_lost)."""

    offline: Annotated[int, Field(ge=0)] = 0
    busy: Annotated[int, Field(ge=0)] = 0
    tampered_cells: Annotated[int, Field(ge=0)] = 0
    command_lost: Annotated[int, Field(ge=0)] = 0


class Scenario(PolicyModel):
    id: StepId
    title: Annotated[str, Field(min_length=1)]
    row: Annotated[int, Field(ge=1, le=7)]
    """The row of recovery.md's scenario table."""
    method: Annotated[int, Field(ge=1, le=3)] | None = None
    notification: Literal["organisation", "other"]
    """Which pair of files travels: Organisation Compromise Notification/Progress, or Other Compromise."""
    compromised: Compromise
    devices: Annotated[int, Field(ge=1)] = 8
    types: str | None = None
    """The estate's mix (ESME=1,GSME=1,CHF=1); default: policies/estate.yaml's weights."""
    faults: Faults = Faults()
    phases: TupleOf[Phase] = Field(min_length=3, max_length=3)

    @property
    def steps(self) -> list[tuple[str, Step]]:
        return [(phase.name, step) for phase in self.phases for step in phase.steps]

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if context.stem and context.stem != self.id:
            yield Problem(("id",), f"the file's name ({context.stem})", self.id)
        names = tuple(phase.name for phase in self.phases)
        if names != PHASES:
            yield Problem(("phases",), "the phases " + ", ".join(PHASES) + " in that order", list(names))
        yield from self.compromised.problems(context)
        seen: set[str] = set()
        for p, phase in enumerate(self.phases):
            for s, step in enumerate(phase.steps):
                where = ("phases", p, "steps", s)
                if step.id in seen:
                    yield Problem((*where, "id"), "a step id used once in the scenario", step.id)
                for needed in step.preconditions:
                    if needed not in seen:
                        yield Problem((*where, "preconditions"), "ids of steps earlier in the scenario", needed)
                seen.add(step.id)
                if isinstance(step, SendCommands):
                    yield from (Problem((*where, "send", *x.loc), x.expected, x.found, x.code, x.what)
                                for x in step.send.problems(context))
                if isinstance(step, NewRootOca):
                    yield from (Problem((*where, "distribute", *x.loc), x.expected, x.found, x.code, x.what)
                                for x in step.distribute.problems(context))


def scenario_folder(policies_dir: Path) -> Path:
    return policies_dir / FOLDER


def scenario_names(policies_dir: Path) -> list[str]:
    return sorted(path.stem for path in scenario_folder(policies_dir).glob("*.yaml"))


def load_scenario_file(path: Path) -> Scenario:
    """One scenario file, checked (``CA:CFG50`` naming the key when it is not as described)."""
    return read_policy_file(path, Scenario, code=BAD_SCENARIO, context=PolicyContext(stem=path.stem))


@cache
def load_scenario(policies_dir: Path, name: str) -> Scenario:
    """The scenario ``name`` of the policy folder (``CA:CFG51`` if there is none)."""
    if name not in scenario_names(policies_dir):
        raise ConfigurationError(UNKNOWN_SCENARIO, f"there is no recovery scenario {name!r} in "
                                 f"{scenario_folder(policies_dir)}; the scenarios are: "
                                 f"{', '.join(scenario_names(policies_dir)) or 'none'}", field="scenario")
    return load_scenario_file(scenario_folder(policies_dir) / f"{name}.yaml")
