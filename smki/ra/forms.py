"""RAPP forms: each form in ``rapp_forms/`` is a JSON Schema plus a workflow
(submitted -> verified -> approved | rejected; withdrawn by the submitter; some take effect at once).

A submission with bad fields is answered with every bad field at once (``FM:FRM01`` with one finding per
field). Approval applies the form's effect (register a Party, appoint an SRO or ARO, authorise a
Subscriber, revoke a certificate, issue a system credential) in the same transaction as its audit record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import select
from sqlalchemy.orm import Session

from smki.core.config import current_settings
from smki.core.errors import ConfigurationError, Finding, SmkiError
from smki.core.policy import load_yaml
from smki.ra import audit, registry
from smki.ra.identity import (
    AZ_NOT_ALLOWED,
    NotAuthenticated,
    NotAuthorised,
    Principal,
    issue_api_token,
    require_acts_for,
    require_aro,
    require_operator,
    require_sro,
)
from smki.ra.lodging import RepositoryAccess, repository_holder
from smki.ra.models import Appointment, CsrDecision, FormSubmission, Organisation
from smki.ra.service import RegistrationAuthority
from smki.ra.unit_of_work import WithinUnitOfWork

FORM_INVALID = "FM:FRM01"
FORM_UNKNOWN = "FM:FRM02"
BAD_TRANSITION = "WF:FRM03"
REASON_REQUIRED = "FM:FRM04"
PRECONDITION = "WF:FRM05"
CHECKS_MISSING = "WF:FRM06"
NO_SUCH_SUBMISSION = "WF:FRM07"
STATES = ("submitted", "verified", "approved", "rejected", "withdrawn")
OPEN = ("submitted", "verified")


def forms_dir() -> Path:
    return current_settings().rapp_forms


@dataclass(frozen=True)
class FormDefinition:
    name: str
    title: str
    description: str
    source: str
    submitted_by: str
    approved_by: str                    # ra_operator | immediate
    verification: tuple[str, ...]
    effect: str
    schema: dict[str, Any] = field(hash=False)

    @property
    def fields(self) -> list[tuple[str, dict[str, Any], bool]]:
        required = set(self.schema.get("required", ()))
        return [(name, spec, name in required) for name, spec in self.schema.get("properties", {}).items()]


@cache
def load_forms(directory: Path) -> dict[str, FormDefinition]:
    forms = {}
    for path in sorted(directory.glob("*.yaml")):
        data = load_yaml(path)
        try:
            Draft202012Validator.check_schema(data["schema"])
            form = FormDefinition(data["name"], data["title"], " ".join(str(data.get("description", "")).split()),
                                  data.get("source", ""), data["submitted_by"], data["approved_by"],
                                  tuple(data.get("verification", ())), data["effect"], data["schema"])
        except (KeyError, SchemaError) as exc:
            raise ConfigurationError("CA:CFG5", f"form {path.name} is not a valid RAPP form: {exc}") from exc
        forms[form.name] = form
    return forms


class FormInvalid(SmkiError):
    pass


MESSAGE_LIMIT = 300  # a finding quotes the bad value; a 20,000-character CSR need not be quoted whole


def _joined(where: str, name: object) -> str:
    return f"{where}/{name}" if where else str(name)


def schema_findings(schema: dict[str, Any], payload: Any, code: str) -> list[Finding]:
    """Every way ``payload`` departs from ``schema``, one finding per bad field (its JSON path), in field
    order: each missing field, each unknown field, each wrong type or value."""
    findings = []
    errors = Draft202012Validator(schema).iter_errors(payload)
    for error in sorted(errors, key=lambda e: [str(part) for part in e.absolute_path]):
        where = "/".join(str(part) for part in error.absolute_path)
        instance = error.instance
        if error.validator == "required" and isinstance(instance, dict):
            for name in error.validator_value:
                if name not in instance:
                    findings.append(Finding(code, f"{_joined(where, name)} is required", field=_joined(where, name)))
        elif error.validator == "additionalProperties" and isinstance(instance, dict):
            known = set(error.schema.get("properties", {}))
            for name in sorted(set(instance) - known):
                findings.append(Finding(code, f"{_joined(where, name)} is not a field of this request",
                                        field=_joined(where, name)))
        else:
            message = error.message if len(error.message) <= MESSAGE_LIMIT else error.message[:MESSAGE_LIMIT] + "..."
            findings.append(Finding(code, f"{where or 'the body'}: {message}", field=where or None))
    return findings


def validate_payload(form: FormDefinition, payload: Any) -> None:
    """Raise FM:FRM01 listing every bad field, each as a finding with its JSON path."""
    if not isinstance(payload, dict):
        raise FormInvalid(FORM_INVALID, f"the {form.title} must be a JSON object of fields.")
    findings = schema_findings(form.schema, payload, FORM_INVALID)
    if findings:
        raise FormInvalid(FORM_INVALID, f"{len(findings)} field(s) of the {form.title} are invalid; correct them all "
                          "and submit again.", details=findings)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FormService:
    def __init__(self, ra: RegistrationAuthority) -> None:
        self.ra = ra
        self.forms = load_forms(forms_dir())

    def definition(self, name: str) -> FormDefinition:
        if name not in self.forms:
            raise SmkiError(FORM_UNKNOWN, f"there is no RAPP form {name!r}; the forms are "
                            f"{', '.join(sorted(self.forms))}.")
        return self.forms[name]

    # --- who may submit ----------------------------------------------------------------------------------

    def _may_submit(self, session: Session, form: FormDefinition, payload: dict[str, Any],
                    principal: Principal | None) -> None:
        if form.submitted_by == "anyone":
            return
        if principal is None:
            raise NotAuthenticated("AU:TOK01", f"sign in to submit the {form.title}.")
        organisation_id = payload.get("organisation_id")
        if form.submitted_by == "sro":
            require_sro(principal, organisation_id)
        elif form.submitted_by == "aro":
            if principal.holds("aro") is None:
                require_aro(principal, "organisation")  # raises the precise refusal
        elif form.submitted_by == "sro_or_aro":
            if principal.holds("sro", organisation_id) is None:
                aro = principal.holds("aro")
                if aro is None:
                    require_sro(principal, organisation_id)
                require_acts_for(aro, organisation_id)  # type: ignore[arg-type]
        elif form.submitted_by == "revocation_requester":
            self._may_request_revocation(session, principal, str(payload.get("serial", "")).upper())
        else:
            raise ConfigurationError("CA:CFG5", f"form {form.name}: unknown submitted_by {form.submitted_by}")

    def _may_request_revocation(self, session: Session, principal: Principal, serial: str) -> None:
        decision = session.execute(select(CsrDecision).where(CsrDecision.serial == serial)).scalar_one_or_none()
        if decision is None or decision.kind != "organisation":
            raise SmkiError(PRECONDITION, f"no Organisation Certificate with serial {serial} was issued by this RA.",
                            field="serial")
        requesters = self.ra.settings.revocation_requesters
        if ("pma" in requesters and principal.holds("pma")) or ("dcc" in requesters and principal.is_dcc
                                                                and principal.holds("aro")):
            return
        aro = require_aro(principal, "organisation")
        require_acts_for(aro, decision.subscriber_organisation_id or -1)

    # --- checks made at submission, so the submitter hears of a problem at once ---------------------------

    def _precheck(self, session: Session, form: FormDefinition, payload: dict[str, Any]) -> int | None:
        organisation_id = payload.get("organisation_id")
        if organisation_id is not None:
            registry.organisation(session, organisation_id)
        if form.effect == "appoint_sro":
            declaration = session.get(FormSubmission, payload["declaration_id"])
            if declaration is None or declaration.form != "director_declaration" or declaration.status != "approved" \
                    or declaration.organisation_id != organisation_id:
                raise SmkiError(PRECONDITION, "the SRO must be nominated on an approved director or company "
                                "secretary declaration of the same Party.", field="declaration_id")
        elif form.effect == "appoint_aro":
            rules = self.ra.settings.eligibility
            if "repository" in payload["scopes"] and rules.require_srept_for_repository:
                party = registry.organisation(session, organisation_id)  # type: ignore[arg-type]
                if party.srept_passed_at is None and not registry.rehearsing(session, party.id):
                    raise SmkiError(registry.NO_SREPT, f"{party.name} has not passed SREPT, so its AROs may not "
                                    "use the Repository yet; nominate without the repository scope, or once it "
                                    "has passed (or while it rehearses SREPT).", field="scopes")
            for acted in payload["acts_for"]:
                target = registry.organisation(session, acted)
                if not target.is_party:
                    raise SmkiError(registry.NOT_A_PARTY, f"{target.name} is not a SEC Party; an ARO acts only for "
                                    "Authorised Subscribers.", field="acts_for")
        elif form.effect == "authorise_subscriber":
            party = registry.organisation(session, organisation_id)  # type: ignore[arg-type]
            if not party.is_party:
                raise SmkiError(registry.NOT_A_PARTY, f"{party.name} is not a SEC Party and can never be an "
                                "Authorised Subscriber in its own name.", field="organisation_id")
            if self.ra.settings.eligibility.require_srept and party.srept_passed_at is None:
                raise SmkiError(registry.NO_SREPT, f"{party.name} has not passed SREPT; apply once it has.",
                                field="organisation_id")
        elif form.effect == "withdraw_aro":
            appointment = session.get(Appointment, payload["appointment_id"])
            if appointment is None or appointment.role != "aro" or appointment.organisation_id != organisation_id:
                raise SmkiError(registry.UNKNOWN, f"appointment {payload['appointment_id']} is not an ARO of your "
                                "Party.", field="appointment_id")
        elif form.effect == "issue_system_credential":
            from smki.ra.iki import parse_csr
            parse_csr(payload["csr"])
        elif form.effect == "revoke_certificate":
            serial = payload["serial"].upper()
            decision = session.execute(select(CsrDecision).where(CsrDecision.serial == serial)).scalar_one_or_none()
            if decision is None or decision.kind != "organisation":
                raise SmkiError(PRECONDITION, f"no Organisation Certificate with serial {serial} was issued by this "
                                "RA.", field="serial")
            if decision.status != "released":
                raise SmkiError(PRECONDITION, f"certificate {serial} is {decision.status.replace('_', ' ')}; only a "
                                "certificate released to its Subscriber (and not yet revoked) can be revoked.",
                                field="serial")
            return decision.subscriber_organisation_id
        elif form.effect == "record_csr_forecast":
            from smki.ra import forecasts
            forecasts.check_forecast(session, self.ra.instance.policies.variance, payload, _now())
        elif form.effect == "record_demand_notice":
            from smki.ra import forecasts
            forecasts.check_notice(session, self.ra.instance.policies.variance, payload, _now())
        elif form.effect == "record_repository_demand_forecast":
            from smki.ra import demand_forecasts
            demand_forecasts.check_forecast(session, self.ra.instance.policies.variance, payload, _now())
        return organisation_id

    # --- the workflow ------------------------------------------------------------------------------------

    def submit(self, name: str, payload: Any, principal: Principal | None) -> tuple[FormSubmission, dict[str, Any]]:
        form = self.definition(name)
        validate_payload(form, payload)
        actor = principal.label if principal else "anonymous"

        def work(session: Session) -> tuple[FormSubmission, dict[str, Any]]:
            self._may_submit(session, form, payload, principal)
            organisation_id = self._precheck(session, form, payload)
            audit.append(session, actor=actor, action="form.submitted", subject=form.name,
                         detail={"payload": payload})
            submission = FormSubmission(form=form.name, status="submitted", payload=payload,
                                        submitted_by=principal.person_id if principal else None,
                                        organisation_id=organisation_id, submitted_at=_now(), updated_at=_now(),
                                        history=[{"at": _now().isoformat(), "by": actor, "status": "submitted"}])
            session.add(submission)
            session.flush()
            secrets: dict[str, Any] = {}
            if form.approved_by == "immediate":
                secrets = self._apply(session, form, submission, actor)
            return submission, secrets
        return audit.audited(self.ra.database, work)

    def _transition(self, submission: FormSubmission, status: str, actor: str, note: str | None = None) -> None:
        submission.status, submission.updated_at = status, _now()
        submission.history = [*submission.history, {"at": _now().isoformat(), "by": actor, "status": status,
                                                    **({"note": note} if note else {})}]

    def _load(self, session: Session, submission_id: int) -> FormSubmission:
        submission = session.get(FormSubmission, submission_id)
        if submission is None:
            raise SmkiError(NO_SUCH_SUBMISSION, f"there is no form submission {submission_id}.")
        return submission

    def verify(self, submission_id: int, principal: Principal, checks: dict[str, bool]) -> FormSubmission:
        require_operator(principal)

        def work(session: Session) -> FormSubmission:
            submission = self._load(session, submission_id)
            form = self.definition(submission.form)
            if submission.status != "submitted":
                raise SmkiError(BAD_TRANSITION, f"submission {submission_id} is {submission.status}; only a "
                                "submitted form can be verified.")
            missing = [check for check in form.verification if checks.get(check) is not True]
            if missing:
                raise SmkiError(CHECKS_MISSING, f"confirm every verification check of the {form.title}: "
                                f"{', '.join(missing)} not confirmed.", field="checks")
            audit.append(session, actor=principal.label, action="form.verified", subject=f"{form.name}:{submission.id}",
                         detail={"checks": {c: True for c in form.verification}})
            self._transition(submission, "verified", principal.label)
            submission.result = {"checks": {c: True for c in form.verification}}
            return submission
        return audit.audited(self.ra.database, work)

    def approve(self, submission_id: int, principal: Principal) -> tuple[FormSubmission, dict[str, Any]]:
        require_operator(principal)

        def work(session: Session) -> tuple[FormSubmission, dict[str, Any]]:
            submission = self._load(session, submission_id)
            form = self.definition(submission.form)
            ready = "verified" if form.verification else "submitted"
            if submission.status not in (ready, "verified"):
                raise SmkiError(BAD_TRANSITION, f"submission {submission_id} is {submission.status}; it must be "
                                f"{ready} before approval.")
            self._precheck(session, form, submission.payload)  # circumstances may have changed since submission
            return submission, self._apply(session, form, submission, principal.label)
        return audit.audited(self.ra.database, work)

    def reject(self, submission_id: int, principal: Principal, reason: str | None) -> FormSubmission:
        require_operator(principal)
        if not reason or len(reason.strip()) < 3:
            raise SmkiError(REASON_REQUIRED, "give the reason for the rejection; the submitter is told it.",
                            field="reason")

        def work(session: Session) -> FormSubmission:
            submission = self._load(session, submission_id)
            if submission.status not in OPEN:
                raise SmkiError(BAD_TRANSITION, f"submission {submission_id} is {submission.status}.")
            audit.append(session, actor=principal.label, action="form.rejected",
                         subject=f"{submission.form}:{submission.id}", detail={"reason": reason})
            self._transition(submission, "rejected", principal.label, reason)
            submission.reason = reason
            return submission
        return audit.audited(self.ra.database, work)

    def withdraw(self, submission_id: int, principal: Principal) -> FormSubmission:
        def work(session: Session) -> FormSubmission:
            submission = self._load(session, submission_id)
            if submission.submitted_by != principal.person_id:
                raise NotAuthorised(AZ_NOT_ALLOWED, "only the submitter may withdraw a form.")
            if submission.status not in OPEN:
                raise SmkiError(BAD_TRANSITION, f"submission {submission_id} is {submission.status}.")
            audit.append(session, actor=principal.label, action="form.withdrawn",
                         subject=f"{submission.form}:{submission.id}")
            self._transition(submission, "withdrawn", principal.label)
            return submission
        return audit.audited(self.ra.database, work)

    def get(self, submission_id: int, principal: Principal) -> FormSubmission:
        with self.ra.database.session() as session:
            submission = self._load(session, submission_id)
            if principal.holds("ra_operator") or submission.submitted_by == principal.person_id or (
                    submission.organisation_id is not None and principal.holds("sro", submission.organisation_id)):
                return submission
            raise NotAuthorised(AZ_NOT_ALLOWED, "only the submitter, the Party's SRO or an RA operator may read "
                                "this submission.")

    def queue(self, principal: Principal) -> list[FormSubmission]:
        require_operator(principal)
        with self.ra.database.session() as session:
            return list(session.execute(select(FormSubmission).where(FormSubmission.status.in_(OPEN))
                                        .order_by(FormSubmission.submitted_at)).scalars())

    # --- effects -----------------------------------------------------------------------------------------

    def _apply(self, session: Session, form: FormDefinition, submission: FormSubmission,
               actor: str) -> dict[str, Any]:
        """Audit the approval, then apply the form's effect, all in ``session``'s unit of work: the
        Repository's part too (:mod:`smki.ra.unit_of_work`), so that a refusal by any part leaves nothing
        of the decision behind. Returns secrets shown once (never stored)."""
        audit.append(session, actor=actor, action="form.approved", subject=f"{form.name}:{submission.id}",
                     detail={"effect": form.effect})
        payload, settings = submission.payload, self.ra.settings
        checks = (submission.result or {}).get("checks", {})
        result: dict[str, Any] = {}
        secrets: dict[str, Any] = {}
        if form.effect == "register_organisation":
            organisation = registry.register_organisation(
                session, settings, actor=actor, name=payload["legal_name"], category=payload["party_category"],
                company_number=payload.get("company_number"), registered_address=payload.get("registered_address"),
                is_rdp=bool(payload.get("is_rdp")),
                user_roles=[(r["role"], r.get("user_id")) for r in payload.get("user_roles", [])])
            submission.organisation_id = organisation.id
            result = {"organisation_id": organisation.id, "user_ids": {
                u.user_role: u.eui64 for u in registry.user_ids(session, organisation.id)}}
        elif form.effect in ("appoint_director", "appoint_sro", "appoint_aro", "appoint_key_custodian"):
            role = {"appoint_director": payload.get("capacity", "director"), "appoint_sro": "sro",
                    "appoint_aro": "aro", "appoint_key_custodian": "key_custodian"}[form.effect]
            person = registry.add_person(session, organisation_id=payload["organisation_id"], name=payload["name"],
                                         email=payload.get("email"))
            appointment = registry.appoint(
                session, actor=actor, person=person, role=role, organisation_id=payload["organisation_id"],
                scopes=payload.get("scopes", ()), acts_for=payload.get("acts_for", ()), submission_id=submission.id,
                identity_verified=bool(checks.get("identity_verified")),
                screening_passed=bool(checks.get("screening_passed")))
            result = {"person_id": person.id, "appointment_id": appointment.id}
            if role in ("sro", "aro"):
                audit.append(session, actor=actor, action="credential.issued", subject=f"person:{person.id}",
                             detail={"kind": "api_token"})
                secrets["api_token"] = issue_api_token(session, person.id, label=f"{role} token",
                                                       entropy=settings.api_token_bytes)
            if role == "aro" and "repository" in payload.get("scopes", ()):
                holder = repository_holder(organisation_name(session, person.organisation_id), person.id)
                audit.append(session, actor=actor, action="credential.issued", subject=f"person:{person.id}",
                             detail={"kind": "repository", "holder": holder})
                secrets.update(repository_credentials(repository_within(session), holder, payload["email"]))
        elif form.effect == "withdraw_aro":
            appointment = registry.withdraw(session, actor=actor, appointment_id=payload["appointment_id"],
                                            reason=payload["reason"], by_organisation=payload["organisation_id"])
            holder = repository_holder(organisation_name(session, appointment.organisation_id), appointment.person_id)
            repository_within(session).revoke_all(holder)
            result = {"appointment_id": appointment.id, "withdrawn_at": appointment.withdrawn_at}
        elif form.effect == "authorise_subscriber":
            registry.authorise(session, settings, actor=actor, organisation_id=payload["organisation_id"],
                               policy=payload["policy"])
            result = {"organisation_id": payload["organisation_id"], "policy": payload["policy"]}
        elif form.effect == "revoke_certificate":
            serial = payload["serial"].upper()
            self.ra.revoke(actor, serial, payload["reason"], session)
            result = {"serial": serial, "reason": payload["reason"]}
            # recorded in the Repository in this unit of work; published on the next CRL once it commits
            self.ra.lodge_within(session).revoke(serial, reason=settings.revocation_reasons[payload["reason"]],
                                                 at=_now(), requested_by=actor)
        elif form.effect == "issue_system_credential":
            from smki.ra.iki import IkiAuthority
            submitter = submission.submitted_by
            assert submitter is not None
            certificate = IkiAuthority(self.ra.instance, settings).issue_system_certificate(
                session, person_id=submitter, system=payload["system_name"], csr_pem=payload["csr"])
            result = {"serial": f"{certificate.serial_number:X}", "certificate": certificate_pem(certificate)}
        elif form.effect == "record_csr_forecast":
            from smki.ra import forecasts
            forecast = forecasts.record_forecast(session, self.ra.instance.policies.variance, payload,
                                                 submission_id=submission.id, submitted_by=submission.submitted_by,
                                                 now=_now())
            result = {"forecast_id": forecast.id, "months": [line["month"] for line in forecasts.forecast_months(
                self.ra.instance.policies.variance, payload)]}
        elif form.effect == "record_demand_notice":
            from smki.ra import forecasts
            result = {"notice_id": forecasts.record_notice(session, payload, submission_id=submission.id,
                                                           now=_now()).id}
        elif form.effect == "record_repository_demand_forecast":
            from smki.ra import demand_forecasts
            demand = demand_forecasts.record_forecast(session, self.ra.instance.policies.variance, payload,
                                                      submission_id=submission.id,
                                                      submitted_by=submission.submitted_by, now=_now())
            result = {"forecast_id": demand.id, "repository_user": demand.repository_user}
        else:
            raise ConfigurationError("CA:CFG5", f"form {form.name}: unknown effect {form.effect}")
        submission.result = {**(submission.result or {}), **{k: _jsonable(v) for k, v in result.items()}}
        self._transition(submission, "approved", actor)
        return secrets


def repository_within(session: Session) -> RepositoryAccess:
    """The Repository's users and API keys, written in ``session``'s unit of work."""
    return RepositoryAccess(WithinUnitOfWork(session))


def repository_credentials(access: RepositoryAccess, holder: str, username: str) -> dict[str, Any]:
    """A Repository API key and portal login for an ARO scoped to the Repository (shown once)."""
    import secrets as random

    password = random.token_urlsafe(18)
    access.create_user(username, password, holder)
    return {"repository_api_key": access.issue_api_key(holder), "repository_username": username,
            "repository_password": password}


def certificate_pem(certificate: Any) -> str:
    from cryptography.hazmat.primitives import serialization
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def organisation_name(session: Session, organisation_id: int | None) -> str | None:
    organisation = session.get(Organisation, organisation_id) if organisation_id else None
    return organisation.name if organisation else None
