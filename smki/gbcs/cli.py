"""``smki gbcs``: read a CS02b message file as people and tools can, and export one in the RTDS layout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smki.gbcs.ciphering import verify_mac
from smki.gbcs.describe import describe
from smki.gbcs.errors import INVALID_VALUE, GbcsError, gbcs_error
from smki.gbcs.messages import decode
from smki.gbcs.rtds import export, read_message_file, signer_among
from smki.gbcs.values import GeneralCiphering


def _fail(error: GbcsError) -> None:
    click.echo(f"error {error.code}: {error.message}", err=True)
    sys.exit(2)


def _certificates(paths: tuple[Path, ...]) -> list[x509.Certificate]:
    certificates: list[x509.Certificate] = []
    for path in paths:
        try:
            certificates.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError) as error:
            raise gbcs_error(INVALID_VALUE, f"{path} holds no readable PEM certificate ({error})") from None
    return certificates


def _private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise gbcs_error(INVALID_VALUE, f"{path} holds no readable unencrypted PEM private key ({error})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise gbcs_error(INVALID_VALUE, f"{path} is not an EC private key")
    return key


@click.group("gbcs")
def gbcs() -> None:
    """GBCS CS02b (Update Security Credentials) messages: decode, check and export."""


@gbcs.command("decode")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cert", "certs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate(s); the one whose key verifies the signature is named (repeatable).")
@click.option("--mac-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A PEM key-agreement private key (the ACB's or the device's) to check the MAC with.")
@click.option("--mac-peer", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The PEM certificate of the other party's key-agreement key, for --mac-key.")
def decode_command(file: Path, certs: tuple[Path, ...], mac_key: Path | None, mac_peer: Path | None) -> None:
    """Print the message in FILE (RTDS hex or raw octets) as JSON; check its signature and MAC if asked."""
    try:
        octets = read_message_file(file)
        message = decode(octets)
        body = describe(message)
        if certs:
            signer = signer_among(octets, _certificates(certs))
            body["signatureVerifiedBy"] = None if signer is None else signer.subject.rfc4514_string() or \
                f"serial {signer.serial_number:x}"
        if mac_key is not None or mac_peer is not None:
            if mac_key is None or mac_peer is None:
                raise gbcs_error(INVALID_VALUE, "--mac-key and --mac-peer go together")
            if not isinstance(message, GeneralCiphering):
                raise gbcs_error(INVALID_VALUE, "the message carries no MAC (it is not General Ciphering)")
            peer = _certificates((mac_peer,))[0].public_key()
            if not isinstance(peer, ec.EllipticCurvePublicKey):
                raise gbcs_error(INVALID_VALUE, f"{mac_peer} does not hold an EC key")
            try:
                verify_mac(octets, _private_key(mac_key), peer)
                body["macVerified"] = True
            except GbcsError as error:
                body["macVerified"] = False
                body["macError"] = f"{error.code} {error.message}"
    except GbcsError as error:
        _fail(error)
    click.echo(json.dumps(body, indent=2))


@gbcs.command("export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write <NAME>_GBCS.HEX and <NAME>_CERTS.PEM into.")
@click.option("--name", required=True, help="File name stem, e.g. CS02bSupplierBySupplier_DRILL_COMMAND.")
@click.option("--cert", "certs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate(s) that verify the message (signer, key-agreement, path); repeatable.")
def export_command(file: Path, directory: Path, name: str, certs: tuple[Path, ...]) -> None:
    """Write the message in FILE (hex or raw) in the RTDS layout, with the certificates that verify it."""
    try:
        message_path, certificates_path = export(read_message_file(file), directory, name, _certificates(certs))
    except GbcsError as error:
        _fail(error)
    click.echo(str(message_path))
    if certificates_path is not None:
        click.echo(str(certificates_path))
