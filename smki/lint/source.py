"""Reads certificates from files: DER, one PEM block, or PEM bundles with comment lines between blocks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

from smki.lint.errors import LintInputError

CERTIFICATE_LABELS = ("CERTIFICATE", "X509 CERTIFICATE")


@dataclass(frozen=True)
class LoadedCertificate:
    """One certificate of one input file. ``index`` is 1-based; ``count`` is how many the file holds."""

    source: str
    index: int
    count: int
    der: bytes

    @property
    def label(self) -> str:
        return f"{self.source}#{self.index}" if self.count > 1 else self.source

    @cached_property
    def certificate(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.der, strict=True)


def _parse(der: bytes, source: str, index: int) -> asn1_x509.Certificate:
    """Parse far enough that every later field access works; asn1crypto parses lazily."""
    try:
        certificate = asn1_x509.Certificate.load(der, strict=True)
        tbs = certificate["tbs_certificate"]
        for name in ("version", "serial_number", "signature", "issuer", "validity", "subject",
                     "subject_public_key_info"):
            tbs[name].native  # noqa: B018 - forces the lazy parse
        certificate["signature_algorithm"].native  # noqa: B018
        certificate["signature_value"].native  # noqa: B018
    except (ValueError, TypeError, KeyError) as exc:
        raise LintInputError("LN:IN03", f"{source} certificate {index} is not a parseable X.509 "
                             f"certificate: {exc}") from exc
    return certificate


def read_certificates(path: Path) -> list[LoadedCertificate]:
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise LintInputError("LN:IN01", f"{source}: no such file") from exc
    except OSError as exc:
        raise LintInputError("LN:IN01", f"{source}: cannot be read ({exc.strerror})") from exc
    if pem.detect(data):
        try:
            blocks = [der for label, _headers, der in pem.unarmor(data, multiple=True)
                      if label in CERTIFICATE_LABELS]
        except ValueError as exc:
            raise LintInputError("LN:IN02", f"{source}: broken PEM ({exc})") from exc
    else:
        try:
            _parse(data, source, 1)
        except LintInputError as exc:
            raise LintInputError("LN:IN02", f"{source} holds no certificate (expected PEM CERTIFICATE "
                                 "blocks or one DER certificate)") from exc
        blocks = [data]
    if not blocks or not blocks[0]:
        raise LintInputError("LN:IN02", f"{source} holds no certificate (expected PEM CERTIFICATE "
                             "blocks or one DER certificate)")
    for number, der in enumerate(blocks, start=1):
        _parse(der, source, number)
    return [LoadedCertificate(source, number, len(blocks), der) for number, der in enumerate(blocks, start=1)]


def read_all(paths: list[Path]) -> list[LoadedCertificate]:
    return [certificate for path in paths for certificate in read_certificates(path)]
