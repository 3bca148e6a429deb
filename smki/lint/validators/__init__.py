"""Small validators, each checking one rule and yielding findings with their own codes.

A validator is ``(view, context) -> Iterable[Finding]``. Those that need the profile return nothing
when no profile applies (the certificate's type could not be told).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from smki.lint.findings import Finding
from smki.lint.model import CertificateView, LintContext
from smki.lint.validators import device, extensions, identifiers, names, policies, structure, usage, validity

Validator = Callable[[CertificateView, LintContext], Iterable[Finding]]

VALIDATORS: tuple[Validator, ...] = (
    structure.version,
    structure.serial_number,
    structure.signature_algorithm,
    structure.public_key,
    structure.self_signature,
    names.issuer,
    names.subject,
    names.remote_party_role,
    names.unique_identifier,
    validity.encodings,
    validity.order,
    extensions.layout,
    extensions.decodable,
    usage.key_usage,
    usage.basic_constraints,
    identifiers.subject_key_identifier,
    identifiers.authority_key_identifier,
    policies.certificate_policies,
    device.hardware_module_name,
)
