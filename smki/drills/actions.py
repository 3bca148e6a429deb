"""The actions a scenario's steps name, each done for real on the drill world.

Every handler takes the step's :class:`Context` (the world, the scenario, what earlier steps found out) and
returns what it did: the actor, a detail mapping for the record, and the artefacts it wrote under
``<world>/artefacts/``. A refusal is a coded :class:`~smki.core.errors.SmkiError`; the runner records the step
failed with it. Handlers are safe to run again after a crash: each checks what an earlier attempt already did
(a decision recorded, a certificate already revoked, a rotation already made, a device no longer exposed).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from repository.crls import PublishedList
from repository.store import CertificateRepository
from smki import ca_rotation
from smki.core.errors import SmkiError
from smki.core.eui64 import Eui64
from smki.core.policyfiles.recovery import (
    DccConfirm,
    NewIssuingOca,
    NewRootOca,
    PmaDecide,
    ResubmitCsrs,
    Scenario,
    SendCommands,
    SendSpec,
    Step,
)
from smki.core.times import now_utc
from smki.csrgen import organisation_csr
from smki.drills import evidence, exposure, files
from smki.drills.exposure import CELL_USAGE_NAME
from smki.drills.world import World
from smki.estate.models import EstateTestKey
from smki.estate.plan import CELL_USAGE_CODE
from smki.estate.send_runs import SendRuns
from smki.estate.sending import CommandSender, DeviceOutcome
from smki.estate.testkeys import TestKeyStore
from smki.publication import publish_arl, publish_crl
from smki.ra import audit
from smki.recovery import carrier
from smki.recovery.ceremony import CeremonySession, record_decision
from smki.recovery.custody import active_custody
from smki.recovery.errors import NO_DECISION, CustodyRefused
from smki.recovery.models import PmaDecision

DCC_OPERATOR = "dcc:drill operator"
CA_OPERATOR = "ca:drill operator"


@dataclass
class Outcome:
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)
    artefacts: list[dict[str, str]] = field(default_factory=list)
    stop: bool = False    # the DCC rejected the suspicion: the rest of the scenario does not happen


@dataclass
class Context:
    """What a step works with. ``state`` persists between steps (and across a pause or a crash) in the run's
    row; ``devices`` records each affected device's outcome in the host database."""

    run_id: int
    scenario: Scenario
    world: World
    state: dict[str, Any]
    devices: DeviceBook
    steps_so_far: Callable[[], list[dict[str, Any]]]
    progress: Callable[[int, int], None]   # (devices done, devices in this send)
    rerun: bool = False                    # an earlier attempt of this step was interrupted
    artefacts: list[dict[str, str]] = field(default_factory=list)   # written by the step's sends

    @property
    def reference(self) -> str:
        return f"DRILL-{self.run_id:06d}-{self.scenario.id.upper()}"

    def artefact(self, relative: str, kind: str, description: str) -> dict[str, str]:
        return {"path": relative, "kind": kind, "description": description}

    def path(self, relative: str) -> Path:
        path = self.world.artefacts / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


class DeviceBook(Protocol):
    """The host's per-device records of a run (kept by :mod:`smki.drills.runner`)."""

    def outcomes(self, outcomes: Mapping[str, tuple[DeviceOutcome, bool]]) -> None:
        """Devices' outcomes after a command, with whether each is recovered (no cell exposed any more); one
        transaction."""

    def affected(self) -> list[str]:
        """The devices the compromise affected when the drill began."""

    def counts(self) -> dict[str, int]:
        """Affected devices by status (affected, recovered, failed, residual)."""

    def residual(self, residual: Mapping[str, exposure.Exposed]) -> None:
        """The post-recovery check's finding: these devices are still exposed, every other affected one is not."""


def _iso(moment: dt.datetime | None = None) -> str:
    return (moment or now_utc()).isoformat()


def _pem(path: Path, certificate: Any) -> None:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


# --- notification and progress files ----------------------------------------------------------------------

def _notification_kind(context: Context) -> files.Kind:
    return f"{context.scenario.notification}-compromise-notification"  # type: ignore[return-value]


def _progress_kind(context: Context) -> files.Kind:
    return f"{context.scenario.notification}-compromise-progress"  # type: ignore[return-value]


NOTIFICATION = "files/notification.json"


def notify_compromise(context: Context, step: Step) -> Outcome:
    compromise = context.state["compromised"]
    population = context.world.population
    if context.scenario.notification == "organisation":
        party = compromise["party"]
        notifier = {"party": party, "party_id": compromise["party_id"],
                    "person": f"ARO of {party}" if step.actor == "party" else "DCC security operations"}
        body = {"party": party, "role": compromise["role"], "certificates": [
            {k: c[k] for k in ("serial", "subject_eui", "role", "key_usage", "cell_usage")}
            for c in compromise["certificates"]]}
    else:
        dcc = population.party("dcc")
        notifier = {"party": dcc["name"], "party_id": dcc["id"], "person": "DCC security operations"}
        body = {"key": compromise["key"], "certificates": compromise["certificates"]}
    document: dict[str, Any] = {"format": "smki-" + _notification_kind(context) + "/1", "reference": context.reference,
                "notified_at": _iso(), "notifier": notifier, "nature": "suspected",
                "description": f"Drill {context.run_id}: {context.scenario.title}", "compromise": body,
                "dcc_confirmation": None, "notified": []}
    files.write(context.path(NOTIFICATION), _notification_kind(context), document)
    return Outcome(notifier["person"] + f" ({notifier['party']})", {"reference": context.reference},
                   [context.artefact(NOTIFICATION, "notification", "the compromise notification file, as notified")])


def dcc_confirm(context: Context, step: Step) -> Outcome:
    assert isinstance(step, DccConfirm)
    kind = _notification_kind(context)
    document = files.read(context.path(NOTIFICATION), kind)
    reason = "the DCC's investigation confirms the compromise" if step.confirmed else \
        "the DCC's investigation finds no compromise"
    document["dcc_confirmation"] = {"confirmed": step.confirmed, "at": _iso(), "by": DCC_OPERATOR, "reason": reason}
    files.write(context.path(NOTIFICATION), kind, document)
    return Outcome(DCC_OPERATOR, {"confirmed": step.confirmed, "reason": reason},
                   [context.artefact(NOTIFICATION, "notification", "the notification file with the DCC's "
                                     "confirmation")], stop=not step.confirmed)


def dcc_notify(context: Context, step: Step) -> Outcome:
    kind = _notification_kind(context)
    document = files.read(context.path(NOTIFICATION), kind)
    population = context.world.population
    if context.scenario.notification == "organisation":
        parties = [context.state["compromised"]["party"]]
    else:   # a CA, Recovery or Contingency key concerns every Eligible Subscriber
        parties = [p["name"] for p in population.parties.values()]
    at = _iso()
    document["notified"] = [{"recipient": "SMKI PMA", "kind": "pma", "at": at},
                            *({"recipient": name, "kind": "party", "at": at} for name in parties),
                            {"recipient": "SEC Panel", "kind": "panel", "at": at}]
    files.write(context.path(NOTIFICATION), kind, document)
    return Outcome(DCC_OPERATOR, {"notified": [n["recipient"] for n in document["notified"]]},
                   [context.artefact(NOTIFICATION, "notification", "the notification file with the parties the "
                                     "DCC notified")])


def progress_report(context: Context, step: Step) -> Outcome:
    sequence = int(context.state.get("progress_sequence", 0)) + 1
    steps = context.steps_so_far()
    book = context.devices
    counts = book_counts(book)
    phase = next(name for name, s in context.scenario.steps if s.id == step.id)
    document: dict[str, Any] = {
        "format": "smki-" + _progress_kind(context) + "/1", "reference": context.reference, "sequence": sequence,
        "reported_at": _iso(), "reported_by": DCC_OPERATOR, "phase": phase, "final": phase == "Post-Recovery",
        "steps": [{"id": s["id"], "title": s["title"], "status": s["status"], "ended_at": s["ended_at"]}
                  for s in steps], "devices": counts}
    if context.scenario.notification == "organisation":
        document["by_party"] = [{"party": context.state["compromised"]["party"], "affected": counts["affected"],
                                 "recovered": counts["recovered"]}]
    else:
        document["new_certificates"] = context.state.get("new_certificates", [])
    relative = f"files/progress-{sequence:02d}.json"
    files.write(context.path(relative), _progress_kind(context), document)
    context.state["progress_sequence"] = sequence
    return Outcome(DCC_OPERATOR, {"sequence": sequence, "devices": counts},
                   [context.artefact(relative, "progress", f"progress file {sequence} to the SMKI PMA")])


def book_counts(book: DeviceBook) -> dict[str, int]:
    counts = book.counts()
    affected = sum(counts.values())
    recovered = counts.get("recovered", 0)
    failed = counts.get("failed", 0) + counts.get("residual", 0)
    return {"affected": affected, "recovered": recovered, "failed": failed, "remaining": affected - recovered}


# --- the SMKI PMA and the Key Custodians ------------------------------------------------------------------

def pma_decide(context: Context, step: Step) -> Outcome:
    assert isinstance(step, PmaDecide)
    world = context.world
    done = context.state.setdefault("decisions", {})
    principal = world.principal(world.population.pma_token)
    recorded = []
    for index, decision in enumerate(step.decisions):
        key = f"{step.id}:{index}"
        if key not in done:
            done[key] = record_decision(world.instance.database, principal, key_name=decision.key,
                                        purpose=decision.purpose,
                                        reason=f"{context.reference}: {context.scenario.title}")
        recorded.append({"decision": done[key], "key": decision.key, "purpose": decision.purpose})
    verdict = "the Recovery and Contingency keys are not used" if not recorded else \
        "; ".join(f"the {d['key']} key may be used ({d['purpose']})" for d in recorded)
    return Outcome(principal.label, {"decisions": recorded, "verdict": verdict})


def _unused_decision(world: World, key_name: str, purpose: str) -> int:
    with world.instance.database.session() as session:
        found = session.scalar(select(PmaDecision.id).where(
            PmaDecision.key_name == key_name, PmaDecision.purpose == purpose, PmaDecision.ceremony_id.is_(None))
            .order_by(PmaDecision.id).limit(1))
    if found is None:
        raise CustodyRefused(NO_DECISION, f"no unused decision of the SMKI PMA that the {key_name} key may be used "
                             f"({purpose}); the scenario's pma_decide step must sanction it.", field="decision")
    return int(found)


@contextmanager
def ceremony(context: Context, key_name: str, purpose: str, record: dict[str, Any]) -> Iterator[CeremonySession]:
    """A ceremony under the PMA's next unused decision for the key: a quorum of custodians (drawn from the
    seed) present their shares from their share files with their passphrases. Closed whatever happens."""
    import random

    world = context.world
    try:
        decision = _unused_decision(world, key_name, purpose)
    except CustodyRefused:
        # The interrupted attempt of this step held its ceremony and so used the decision; the PMA, having
        # sanctioned this use in the scenario, sanctions the attempt that finishes it (recorded as such).
        if not (context.rerun and _sanctioned(context.scenario, key_name, purpose)):
            raise
        decision = record_decision(world.instance.database, world.principal(world.population.pma_token),
                                   key_name=key_name, purpose=purpose,
                                   reason=f"{context.reference}: sanctioned again for the step an interruption "
                                   "stopped after its ceremony")
        record["sanctioned_again"] = decision
    session = CeremonySession.open(world.instance.database, world.instance.policies.custody, key_name=key_name,
                                   decision_id=decision, actor=DCC_OPERATOR)
    custodians = world.population.custodians
    present = random.Random(f"{world.seed}:{session.id}").sample(custodians, session.quorum)
    try:
        for custodian in present:
            carried = carrier.read(world.share_file(key_name, session.generation, custodian["appointment_id"]))
            session.present(custodian["appointment_id"],
                            world_passphrase(world, key_name, session.generation, custodian["appointment_id"]),
                            carried.sealed)
        record.setdefault("ceremonies", []).append(
            {"ceremony": session.id, "key": key_name, "purpose": purpose, "decision": decision,
             "generation": session.generation, "quorum": session.quorum,
             "custodians": [f"{c['name']} ({c['party']})" for c in present]})
        yield session
    except BaseException:
        if not session.closed:
            session.close(DCC_OPERATOR, outcome="abandoned")
        raise
    if not session.closed:
        session.close(DCC_OPERATOR)


def _sanctioned(scenario: Scenario, key_name: str, purpose: str) -> bool:
    return any(isinstance(step, PmaDecide) and any(d.key == key_name and d.purpose == purpose for d in step.decisions)
               for _phase, step in scenario.steps)


def world_passphrase(world: World, key_name: str, generation: int, appointment_id: int) -> str:
    from smki.drills.world import passphrase
    return passphrase(world.seed, key_name, generation, appointment_id)


# --- the CA and the RA ------------------------------------------------------------------------------------

def _crl_artefact(context: Context, published: PublishedList, name: str) -> dict[str, str]:
    relative = f"lists/{name}-{published.number}.crl"
    context.path(relative).write_bytes(published.der)
    return context.artefact(relative, name, f"the {name.upper()} number {published.number} "
                            f"({published.entries} entries)")


def revoke(context: Context, step: Step) -> Outcome:
    world, compromise = context.world, context.state["compromised"]
    instance = world.instance
    detail: dict[str, Any] = {}
    if compromise["key"] in ("issuing_oca", "root_oca", "contingency", "recovery"):
        done = context.state.setdefault("revoked_ca", [])
        for certificate in compromise["certificates"]:
            if certificate["serial"] in done or certificate["name"] in ("root_oca",):
                continue
            ca_rotation.revoke_ca_certificate(instance, certificate["name"], reason="keyCompromise",
                                              actor=CA_OPERATOR, serial=certificate["serial"])
            done.append(certificate["serial"])
        published = publish_arl(instance)
        detail.update(revoked=done, arl=published.number)
        return Outcome(CA_OPERATOR, detail, [_crl_artefact(context, published, "arl")])
    ra = world.ra
    reason = ra.settings.revocation_reasons["key_compromise"]
    store = CertificateRepository(instance.database)
    revoked = []
    for certificate in compromise["certificates"]:
        serial = certificate["serial"]
        record = store.get(serial)
        if record is not None and record.status_text != "issued":
            continue   # revoked by an earlier attempt

        def work(session: Any, serial: str = serial) -> None:
            audit.append(session, actor=CA_OPERATOR, action="drill.certificate_revoked",
                         subject=f"organisation:{serial}", detail={"reason": "key_compromise",
                                                                   "drill": context.run_id})
            ra.revoke(CA_OPERATOR, serial, "key_compromise", session)
            ra.lodge_within(session).revoke(serial, reason=reason, at=now_utc(), requested_by=CA_OPERATOR)
        audit.audited(instance.database, work)
        revoked.append(serial)
    published = publish_crl(instance)
    detail.update(revoked=revoked, crl=published.number)
    return Outcome(CA_OPERATOR, detail, [_crl_artefact(context, published, "crl")])


def _recertify_recovery(world: World) -> ca_rotation.Rotation:
    with world.instance.database.session() as session:
        custody = active_custody(session, "recovery")
        assert custody is not None
        public = serialization.load_pem_public_key(custody.public_key.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    return ca_rotation.certify_recovery_key(world.instance, public, actor=CA_OPERATOR)


def _certificate_artefact(context: Context, name: str, certificate: Any, description: str) -> dict[str, str]:
    relative = f"certificates/{name}-{certificate.serial_number:X}.pem"
    _pem(context.path(relative), certificate)
    context.state.setdefault("new_certificates", []).append(
        {"name": name, "serial": f"{certificate.serial_number:X}"})
    return context.artefact(relative, "certificate", description)


def new_issuing_oca(context: Context, step: Step) -> Outcome:
    assert isinstance(step, NewIssuingOca)
    world = context.world
    old = context.state["compromised"]["serials"][0]
    current = world.instance.hierarchy.certificate("issuing_oca")
    artefacts = []
    if f"{current.serial_number:X}".lstrip("0") == old.lstrip("0"):
        rotation = ca_rotation.new_issuing_oca(world.instance, actor=CA_OPERATOR)
        artefacts.append(_certificate_artefact(context, "issuing_oca", rotation.certificate, "the new Issuing OCA"))
        if step.recertify_recovery:
            recovery = _recertify_recovery(world)
            artefacts.append(_certificate_artefact(context, "recovery", recovery.certificate,
                                                   "the Recovery certificate under the new Issuing OCA"))
    serial = world.instance.hierarchy.certificate("issuing_oca").serial_number
    return Outcome(CA_OPERATOR, {"issuing_oca": f"{serial:X}"}, artefacts)


def new_root_oca(context: Context, step: Step) -> Outcome:
    """The contingency recovery's CA and device work, in one step: at a ``use`` ceremony the old Contingency key
    and its symmetric key are released, the new Root OCA (with new contingency material) and Issuing OCA made, and
    the new root sent to the devices in mode 9 under the old key; then, at a ``new_key`` ceremony, the new
    contingency material is taken into custody (the old shares retire). The new material never leaves memory
    between the two."""
    assert isinstance(step, NewRootOca)
    world = context.world
    detail: dict[str, Any] = {}
    artefacts: list[dict[str, str]] = []
    if context.state.get("root_rotated"):
        raise SmkiError("DR:RUN5", "a new Root OCA was made by an earlier attempt of this step, which stopped before "
                        "its Contingency key was in custody; the drill cannot go on (start a new drill).")
    with ceremony(context, "contingency", "use", detail) as session, session.key(DCC_OPERATOR) as old:
        rotation = ca_rotation.new_root_oca(world.instance, actor=CA_OPERATOR)
        context.state["root_rotated"] = True
        for name, made in (("root_oca", rotation.root), ("issuing_oca", rotation.issuing_oca),
                           ("recovery", rotation.recovery)):
            if made is not None:
                artefacts.append(_certificate_artefact(context, name, made.certificate, f"the new {name}"))
        root_der = rotation.root.certificate.public_bytes(serialization.Encoding.DER)
        detail["send"] = send(context, step.distribute, signer=old.private_key, symmetric_key=old.wrapping_key,
                              root=root_der, ceremony_held=True)
    with ceremony(context, "contingency", "new_key", detail) as session:
        generation = session.generation + 1
        _material, shares = session.new_key(world.custodians("contingency", generation), DCC_OPERATOR,
                                            instance=world.instance, material=rotation.contingency)
        world.keep_shares("contingency", generation, shares)
    detail["new_custody"] = {"key": "contingency", "generation": generation, "shares": len(shares)}
    context.state["root_rotated"] = False
    return Outcome("Key Custodians, CA and DCC", detail, artefacts + context.artefacts)


def new_recovery_key(context: Context, step: Step) -> Outcome:
    """At a ``new_key`` ceremony: a new Recovery key under new shares for the same custodians, certified by the
    CA in the same unit of work (the old shares stop counting)."""
    world = context.world
    detail: dict[str, Any] = {}
    with ceremony(context, "recovery", "new_key", detail) as session:
        generation = session.generation + 1
        _material, shares = session.new_key(world.custodians("recovery", generation), DCC_OPERATOR,
                                            instance=world.instance)
        world.keep_shares("recovery", generation, shares)
        certified = session.certified
    assert certified is not None   # a new Recovery key is certified at its ceremony
    detail["new_custody"] = {"key": "recovery", "generation": generation, "shares": len(shares)}
    return Outcome("Key Custodians and CA", detail,
                   [_certificate_artefact(context, "recovery", certified.certificate, "the new Recovery certificate")])


def resubmit_csrs(context: Context, step: Step) -> Outcome:
    """The Eligible Subscribers' new Organisation CSRs, each through the RA's CSR path with the Party's ARO
    credential; the new keys are kept as test material (the drill's Parties are test Parties)."""
    assert isinstance(step, ResubmitCsrs)
    world = context.world
    population = world.population
    wanted: list[dict[str, Any]]
    if step.scope == "compromised":
        wanted = list(context.state["compromised"]["certificates"])
    else:
        with world.instance.database.session() as session:
            rows = session.execute(select(EstateTestKey).order_by(EstateTestKey.id)).scalars().all()
            newest = {(r.subject_eui, r.role, r.key_usage, r.cell_usage): r for r in rows}
            wanted = [{"serial": r.serial, "subject_eui": r.subject_eui, "role_code": r.role, "key_usage": r.key_usage,
                       "cell_usage": CELL_USAGE_NAME[r.cell_usage],
                       "party_id": r.party_id} for r in newest.values()]
    done = context.state.setdefault("resubmitted", {})
    store = TestKeyStore(world.instance)
    issued = []
    for item in wanted:
        place = f"{step.id}:{item['subject_eui']}:{item['role_code']}:{item['key_usage']}:{item['cell_usage']}"
        if place in done:
            continue
        category = population.category_of(item["party_id"])
        assert category is not None
        principal = world.principal(population.party(category)["aro_token"])
        key = ec.generate_private_key(ec.SECP256R1())
        csr = organisation_csr(key, f"{item['role_code']:02X}", Eui64.parse(item["subject_eui"]), item["key_usage"])
        release = world.ra.submit_organisation_csr(principal, csr.public_bytes(serialization.Encoding.PEM))
        with world.instance.database.session() as session:
            store.hold(session, item["party_id"], role=item["role_code"], usage=item["key_usage"],
                       cell_usage=CELL_USAGE_CODE[item["cell_usage"]], eui=item["subject_eui"], serial=release.serial,
                       key=key)
        done[place] = release.serial
        issued.append({"party": population.party_name(item["party_id"]), "serial": release.serial,
                       "subject_eui": item["subject_eui"], "key_usage": item["key_usage"],
                       "cell_usage": item["cell_usage"], "by": principal.label})
    return Outcome("Eligible Subscribers' AROs", {"issued": issued, "count": len(done)})


# --- the devices ------------------------------------------------------------------------------------------

def send_commands(context: Context, step: Step) -> Outcome:
    assert isinstance(step, SendCommands)
    detail = send(context, step.send)
    mode = step.send.mode
    actor = {"supplier": "the Subscriber (mode 2)", "networkOperator": "the Subscriber (mode 3)",
             "recovery": "DCC under the Recovery key (mode 8)",
             "contingency": "DCC under the Contingency key (mode 9)"}[mode]
    return Outcome(actor, detail, list(context.artefacts))


def send(context: Context, spec: SendSpec, *, signer: ec.EllipticCurvePrivateKey | None = None,
         symmetric_key: bytes | None = None, root: bytes | None = None, ceremony_held: bool = False) -> dict[str, Any]:
    """Send ``spec``'s command to every affected device still exposed, retry those not recovered, then escalate
    what is left; each device's outcome recorded. A ceremony is held for the Recovery or Contingency key unless
    the caller holds one already (``signer``)."""
    book = context.devices
    compromise = context.state["compromised"]
    targets = sorted(e.device_id for e in exposure.scan(context.world, compromise, book.affected()))
    detail: dict[str, Any] = {"mode": spec.mode, "roles": list(spec.roles), "attempts": []}
    if spec.ceremony is not None and not ceremony_held:
        with ceremony(context, spec.ceremony.key, "use", detail) as session, session.key(DCC_OPERATOR) as material:
            targets = _attempts(context, spec, targets, material.private_key, material.wrapping_key, root, detail)
    else:
        targets = _attempts(context, spec, targets, signer, symmetric_key, root, detail)
    if targets and spec.escalate_to is not None:
        detail["escalated"] = send_to(context, spec.escalate_to, targets)
    return detail


def send_to(context: Context, spec: SendSpec, targets: list[str]) -> dict[str, Any]:
    detail: dict[str, Any] = {"mode": spec.mode, "roles": list(spec.roles), "devices": targets, "attempts": []}
    if spec.ceremony is not None:
        with ceremony(context, spec.ceremony.key, "use", detail) as session, session.key(DCC_OPERATOR) as material:
            left = _attempts(context, spec, targets, material.private_key, material.wrapping_key, None, detail)
    else:
        left = _attempts(context, spec, targets, None, None, None, detail)
    if left and spec.escalate_to is not None:
        detail["escalated"] = send_to(context, spec.escalate_to, left)
    return detail


def _attempts(context: Context, spec: SendSpec, targets: list[str], signer: ec.EllipticCurvePrivateKey | None,
              symmetric_key: bytes | None, root: bytes | None, detail: dict[str, Any]) -> list[str]:
    """Up to 1 + retries sends; returns the devices still not recovered. Outcomes are read from the send run a
    page at a time (a large estate's would not fit in memory), each page recorded in one host transaction."""
    placements: dict[str, Any] | None = None
    if spec.placements:
        placements = dict(spec.placements)
        if placements.get("root") in ("new", "current"):
            # "new": the Root OCA this step made; "current": the root devices hold now, placed again (mode 9 must
            # place a root, and may then replace any other cell under it)
            placements["root"] = root if placements["root"] == "new" and root is not None else \
                context.world.instance.hierarchy.certificate("root_oca").public_bytes(serialization.Encoding.DER)
    for attempt in range(1 + spec.retries):
        if not targets:
            break
        total = len(targets)
        name = f"{context.state.get('step', 'send')}-{spec.mode}-{len(detail['attempts']) + 1}"
        samples, why = evidence.sample(context.world, name=name, mode=spec.mode, roles=list(spec.roles),
                                       device_id=targets[0], placements=placements, signer=signer,
                                       symmetric_key=symmetric_key)
        context.artefacts.extend(samples)
        context.progress(0, total)
        report = CommandSender(context.world.instance).send(
            spec.mode, list(spec.roles), targets, signer=signer, symmetric_key=symmetric_key, placements=placements,
            progress=_counting(context, total), requested_by=f"{context.reference} (attempt {attempt + 1})")
        left: list[str] = []
        seen: set[str] = set()
        outcomes: dict[str, DeviceOutcome] = {}
        runs = SendRuns(context.world.instance)
        for device_id, outcome in runs.outcomes(report.run_id) if report.run_id is not None else ():
            outcomes[device_id] = outcome
            seen.add(device_id)
            if len(outcomes) >= OUTCOME_PAGE:
                left += _record_outcomes(context, outcomes)
                outcomes = {}
        left += _record_outcomes(context, outcomes)
        # a device the run names no outcome for got no command: it is not recovered either
        left = sorted({*left, *(d for d in targets if d not in seen)})
        detail["attempts"].append({"attempt": attempt + 1, "devices": total, "by_status": dict(report.by_status),
                                   "refused": dict(report.refused), "run": report.run_id,
                                   "sample": [a["path"] for a in samples] or why})
        targets = left
    return targets


OUTCOME_PAGE = 2000


def _record_outcomes(context: Context, outcomes: Mapping[str, DeviceOutcome]) -> list[str]:
    """Record a page of outcomes; returns the devices of the page whose command did not recover them."""
    if not outcomes:
        return []
    still_exposed = {e.device_id for e in exposure.scan(context.world, context.state["compromised"], outcomes)}
    context.devices.outcomes({device_id: (outcome, device_id not in still_exposed)
                              for device_id, outcome in outcomes.items()})
    return [device_id for device_id, outcome in outcomes.items() if outcome.status != "recovered"]


def _counting(context: Context, total: int) -> Callable[[int], None]:
    done = [0]

    def progress(count: int) -> None:
        done[0] += count
        context.progress(done[0], total)
    return progress


def post_recovery_check(context: Context, step: Step) -> Outcome:
    """Every device's cells read for the compromised key; the devices still exposed are the residual exposure."""
    world, compromise = context.world, context.state["compromised"]
    residual = {e.device_id: e for e in exposure.scan(world, compromise)}
    context.devices.residual(residual)
    relative = "cells/residual.json"
    context.path(relative).write_text(json.dumps(
        [{"device_id": e.device_id, "type": e.device_type, "party": e.party, "faults": e.faults, "cells": e.cells}
         for e in residual.values()], indent=2) + "\n", encoding="utf-8")
    by: dict[tuple[str, str], int] = {}
    for e in residual.values():
        by[(e.device_type, e.party or "")] = by.get((e.device_type, e.party or ""), 0) + 1
    return Outcome(DCC_OPERATOR, {"residual": len(residual), "devices": sorted(residual),
                                  "by_type_party": [{"type": t, "party": p, "devices": n}
                                                    for (t, p), n in sorted(by.items())]},
                   [context.artefact(relative, "cells", "the devices whose cells still hold the compromised key")])


HANDLERS: dict[str, Callable[[Context, Step], Outcome]] = {
    "notify_compromise": notify_compromise, "dcc_confirm": dcc_confirm, "dcc_notify": dcc_notify,
    "pma_decide": pma_decide, "revoke": revoke, "new_issuing_oca": new_issuing_oca, "new_root_oca": new_root_oca,
    "new_contingency_key": new_root_oca, "new_recovery_key": new_recovery_key, "resubmit_csrs": resubmit_csrs,
    "send_commands": send_commands, "progress_report": progress_report, "post_recovery_check": post_recovery_check}
