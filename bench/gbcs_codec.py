"""``python -m bench.gbcs_codec``: the CS02b codec's cost per message, against one ECDSA P-256 verify.

Every figure is a ratio to a bare ``cryptography`` ECDSA P-256 signature verification over the same
octets, measured in the same process and run (best of three rounds each), so a busy machine moves both
alike. The messages are an 8-certificate recovery command and a 3-cell device response built with the
codec itself (no interop files needed). "cold" clears all the codec's caches before each call (the first
device to see a payload); "warm" does not (every further device of a drill).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smki.core.eui64 import Eui64
from smki.gbcs import (
    AuthorisingRemotePartyControl,
    CredentialsReplacementMode,
    ExecutionOutcome,
    KeyUsage,
    LengthEncoding,
    RemotePartyRole,
    ReplacementOutcome,
    StatusCode,
    TrustAnchorCell,
    TrustAnchorReplacement,
    UpdateSecurityCredentials,
    build,
    decode,
    encode,
    sign,
    verify_mac,
    verify_signature,
    wrap_with_mac,
)
from smki.gbcs import payload as payload_module


def certificate(key: ec.EllipticCurvePrivateKey, name: str) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650)).sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER))


def best_per_call(run: Callable[[], object], count: int, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(count):
            run()
        best = min(best, (time.perf_counter() - start) / count)
    return best


def clear_caches() -> None:
    for cached in (payload_module._decode_command, payload_module._decode_response, payload_module._decode_alert,
                   payload_module.length_encoding_of, payload_module._encode_cached, payload_module._cell_der,
                   payload_module._cell_from_contents, payload_module._cached_item_der):
        cached.cache_clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="calls per round (default 300)")
    count = parser.parse_args(argv).count

    signer, acb, device_ka = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    certificates = (certificate(signer, "OCA"), certificate(acb, "ORG"))
    cells = [TrustAnchorCell(role, usage) for role in (RemotePartyRole.SUPPLIER, RemotePartyRole.NETWORK_OPERATOR,
                                                        RemotePartyRole.ACCESS_CONTROL_BROKER, RemotePartyRole.RECOVERY)
             for usage in (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_AGREEMENT)]
    command_payload = UpdateSecurityCredentials(
        AuthorisingRemotePartyControl(CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY, 7000),
        tuple(TrustAnchorReplacement(certificates[index % 2], cell) for index, cell in enumerate(cells)),
        (certificates[0],))
    originator, target = Eui64.parse("90B3D51F30000001"), Eui64.parse("00DB1234567890A0")
    command = sign(build.command(originator, target, 7000, command_payload), signer)
    command_octets = encode(command)
    outcome = ExecutionOutcome(7000, CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY, (), tuple(
        ReplacementOutcome(cell, StatusCode.SUCCESS, bytes(8), bytes(8), bytes(8), bytes(8)) for cell in cells[:3]))
    answer = sign(build.response(command.header, outcome, datetime.now(UTC), LengthEncoding.LONG_TWO_OCTETS), signer)
    answer_octets = encode(answer)
    supplier_command = replace(command, header=replace(command.header, message_code=0x0102),
                               payload=replace(command_payload, control=replace(
                                   command_payload.control, mode=CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER)))
    wrapped_octets = encode(wrap_with_mac(supplier_command, acb, device_ka.public_key()))

    der_signature = signer.sign(command_octets, ec.ECDSA(hashes.SHA256()))
    public = signer.public_key()
    baseline = best_per_call(lambda: public.verify(der_signature, command_octets, ec.ECDSA(hashes.SHA256())), count)
    print(f"baseline: one bare ECDSA P-256 verify of {len(command_octets)} octets: {baseline * 1e6:.1f} us = 1.00")

    def cold(run: Callable[[], object]) -> Callable[[], object]:
        def call() -> object:
            clear_caches()
            return run()
        return call

    rows = [
        (f"decode recovery command ({len(command_octets)} octets), cold", cold(lambda: decode(command_octets))),
        ("decode recovery command, warm", lambda: decode(command_octets)),
        ("encode recovery command, cold", cold(lambda: encode(command))),
        ("encode recovery command, warm", lambda: encode(command)),
        (f"decode device response ({len(answer_octets)} octets), cold", cold(lambda: decode(answer_octets))),
        ("decode device response, warm", lambda: decode(answer_octets)),
        ("encode device response, cold", cold(lambda: encode(answer))),
        ("verify_signature on the command's octets", lambda: verify_signature(command_octets, public)),
        ("sign the command (warm)", lambda: sign(command, signer)),
        ("wrap_with_mac (ECDH + KDF + GMAC, warm)",
         lambda: wrap_with_mac(supplier_command, acb, device_ka.public_key())),
        ("verify_mac on the octets", lambda: verify_mac(wrapped_octets, device_ka, acb.public_key())),
    ]
    for label, run in rows:
        per_call = best_per_call(run, count)
        print(f"{label:<58} {per_call * 1e6:9.1f} us  {per_call / baseline:6.2f} x verify")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
