"""Certificate and CRL profiles, read from ``policies/profiles/*.yaml``.

The models and their checks (the GBCS section 12 rules among them) live with the other policy files in
:mod:`smki.core.policyfiles.profiles`, so that ``smki serve`` refuses a bad profile at start; the CA reads
them through this module.
"""

from __future__ import annotations

from smki.core.policy import load_certificate_profile, load_crl_profile
from smki.core.policyfiles.profiles import (
    CERTIFICATE_PROFILES,
    CRL_PROFILES,
    GBCS_EXTENSION_RULES,
    CertificateProfile,
    CrlProfile,
    ExtensionSpec,
    SubjectAttribute,
    Validity,
)

__all__ = [
    "CERTIFICATE_PROFILES", "CRL_PROFILES", "GBCS_EXTENSION_RULES", "CertificateProfile", "CrlProfile",
    "ExtensionSpec", "SubjectAttribute", "Validity", "load_certificate_profile", "load_crl_profile",
]
