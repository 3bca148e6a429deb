"""Sending CS02b commands to the simulated estate (issue 13 item 5): build, sign, (as the ACB) MAC-wrap, deliver,
and check every answer; each device's outcome named.

Modes and who signs:

- ``recovery`` (mode 8): the DCC's Recovery key, as the Recovery certificate's Entity ID. No MAC: recovery works
  when the ACB cannot.
- ``contingency`` (mode 9): the Contingency private key, carrying the plaintext symmetric key that unwraps its
  public half from the device's root cell; it places a new Root OCA (``placements={"root": DER}``) and any other
  roles' cells, validated against that new root.
- ``supplier`` (mode 2, supplierBySupplier) and ``networkOperator`` (mode 3, networkOperatorByNetworkOperator):
  the cell's holder, with the TEST key the sandbox holds for the certificate in the device's signing cell of that
  role (:class:`smki.estate.testkeys.TestKeyStore`: demo and drill Parties only; a real Party's key is never
  here, and its devices are reported ``ES:KEY2``), MAC-wrapped with the test key of the certificate in the
  device's ACB key-agreement cell.

The Recovery and Contingency keys: ``signer`` (and ``symmetric_key``) given by the caller, from a key ceremony
(:meth:`smki.recovery.ceremony.CeremonySession.key`); when not given, the key store's, as long as the key has
not been taken into the custody of the Key Custodians. Once it has, the send is refused with ``ES:SND4``: run it
under a ceremony (``smki estate send --ceremony-decision N --custodian-share FILE ...``).

What is placed (``placements``): by default, in each target cell, the newest issued Organisation Certificate of
the cell's current holder (its Entity ID, role and key usage) in the Repository (methods 1 and 3); a prepayment
top-up cell takes the second newest when there are two, as at installation; a recovery cell the hierarchy's
current Recovery certificate. ``{"supplier": "acb"}``: the ACB's
newest certificate of the cell's key usage in the supplier cells (method 2: the DCC takes temporary control).
``{"root": DER}``: the new Root OCA (mode 9). ``{"path": [DER, ...]}``: the certification path the command
carries (default: the instance's Issuing OCA).

Every answer is checked: a response must verify with the device's own Device Certificate (read from the
Repository), come from the device, and answer the command's counter. A device's outcome
(:class:`DeviceOutcome`): ``recovered`` (a verified response, every cell ``success``), ``failed`` (a cell not
replaced, with its GBCS status; no answer because the device is offline or the command was lost; or an answer
that does not verify), ``refused`` (the device discarded the command: its wrapping, signature, anti-replay ...
checks, with the ``ES:PRCn`` code) or ``not_sent`` (no command could be built: no key, nothing to place).

Sending is a send run (:mod:`smki.estate.send_runs`): chunks under leases, resumable, never a second command to a
device. :meth:`CommandSender.send` makes a run and sends all its chunks in this process.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from repository.store import CertificateRepository, normalised_serial
from smki.bootstrap import CONTINGENCY_KEY, CONTINGENCY_WRAPPING_KEY, RECOVERY_KEY
from smki.core.errors import ConfigurationError
from smki.core.eui64 import Eui64, InvalidEui64
from smki.estate.device import KEY_USAGE_BY_NAME, NAME_BY_KEY_USAGE, read_certificate
from smki.estate.plan import REPOSITORY_USAGE, EstateError
from smki.estate.processing import Delivered
from smki.estate.processor import LOST, OFFLINE
from smki.estate.testkeys import TestKeyStore
from smki.gbcs import (
    AuthorisingRemotePartyControl,
    CellUsage,
    CredentialsReplacementMode,
    GbcsError,
    KeyUsage,
    LengthEncoding,
    RemotePartyRole,
    StatusCode,
    TrustAnchorCell,
    TrustAnchorReplacement,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsResponse,
    build,
    decode,
    encode,
    encode_payload,
    sign,
    sign_and_encode,
    to_be_signed,
    verify_frame_signature,
    wrap_with_mac,
)
from smki.gbcs.errors import UNKNOWN_APDU
from smki.gbcs.framing import (
    EUI_LENGTH,
    GENERAL_SIGNING_TAG,
    SIGNATURE_LENGTH,
    TRANSACTION_ID_LENGTH,
    SigningFrame,
    header_octets,
    write_length,
)
from smki.gbcs.signing import apdu_from_frame, read_whole_signing_frame
from smki.instance import Instance

BAD_REQUEST = "ES:SND1"
NOTHING_TO_PLACE = "ES:SND2"
UNVERIFIED = "ES:SND3"
KEY_IN_CUSTODY = "ES:SND4"
BAD_PLACEMENT = "ES:SND5"
CELLS_NOT_REPLACED = "ES:SND6"

Mode = CredentialsReplacementMode
MODES = {"recovery": Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY, "supplier": Mode.SUPPLIER_BY_SUPPLIER,
         "networkOperator": Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR, "contingency": Mode.ANY_BY_CONTINGENCY}
ROLE_BY_NAME = {"recovery": RemotePartyRole.RECOVERY, "supplier": RemotePartyRole.SUPPLIER,
                "networkOperator": RemotePartyRole.NETWORK_OPERATOR,
                "accessControlBroker": RemotePartyRole.ACCESS_CONTROL_BROKER,
                "transitionalCoS": RemotePartyRole.TRANSITIONAL_COS, "wanProvider": RemotePartyRole.WAN_PROVIDER}
# The MAC-wrapped modes: the role whose holder signs, and the only role whose cells the mode replaces.
PARTY_MODES = {Mode.SUPPLIER_BY_SUPPLIER: "supplier", Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: "networkOperator"}
# The DCC's modes: the key in the key store (or in custody, by the same name) that signs.
DCC_KEYS = {Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY: RECOVERY_KEY, Mode.ANY_BY_CONTINGENCY: CONTINGENCY_KEY}
AUTHORISING = {Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY: RemotePartyRole.RECOVERY,
               Mode.SUPPLIER_BY_SUPPLIER: RemotePartyRole.SUPPLIER,
               Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: RemotePartyRole.NETWORK_OPERATOR}
ROOT_CELL = TrustAnchorCell(RemotePartyRole.ROOT, KeyUsage.KEY_CERT_SIGN, CellUsage.MANAGEMENT)
ACB = "acb"

RECOVERED, REFUSED, FAILED, NOT_SENT = "recovered", "refused", "failed", "not_sent"
OUTCOME_STATES = (RECOVERED, REFUSED, FAILED, NOT_SENT)
# The device answered nothing because of the transport, not its checks: a failure to retry, not a refusal.
TRANSIT = frozenset({OFFLINE, LOST})
MAX_PROBLEMS = 20
_ECDSA = ec.ECDSA(hashes.SHA256())
_SIGNING_TAG, _SIGNATURE_FIELD = bytes((GENERAL_SIGNING_TAG,)), bytes((SIGNATURE_LENGTH,))
# Where the business target sits in a command's signed octets: after the transaction ID and the business
# originator, each behind its length octet, and its own length octet.
_TARGET_AT = 1 + TRANSACTION_ID_LENGTH + 1 + EUI_LENGTH + 1


def parse_share(text: str) -> tuple[int, int]:
    """``K/N`` (the devices numbered K modulo N) as a pair, or ``ES:SND1``."""
    k, slash, n = text.partition("/")
    if not (slash and k.strip().isdigit() and n.strip().isdigit() and 0 <= int(k) < int(n)):
        raise EstateError(BAD_REQUEST, f"--share is K/N with 0 <= K < N (this sender's share of N), not {text!r}",
                          field="share")
    return int(k), int(n)


def cell_name(cell: TrustAnchorCell) -> str:
    """A cell as reports name it: ``supplier digitalSignature``, ``supplier keyAgreement (top-up)``."""
    name = f"{cell.role.name.lower()} {NAME_BY_KEY_USAGE.get(cell.key_usage, '?')}"
    return name + " (top-up)" if cell.cell_usage is CellUsage.PREPAYMENT_TOP_UP else name


@dataclass(frozen=True)
class DeviceOutcome:
    status: str                                   # recovered | refused | failed | not_sent
    codes: dict[str, int] = field(default_factory=dict)   # cell name -> GBCS status code (verified response)
    code: str | None = None                       # why not recovered (ES:PRCn, ES:SNDn, ES:KEYn ...)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "codes": self.codes, "code": self.code}


@dataclass
class SendReport:
    devices: int = 0
    answered: int = 0                    # signed responses received
    verified: int = 0                    # ... that verified with the device's certificate and matched the command
    refused: Counter[str] = field(default_factory=Counter)       # code -> devices (refused, or not sent)
    statuses: Counter[str] = field(default_factory=Counter)      # "role keyUsage: status" -> cells
    problems: list[str] = field(default_factory=list)            # the first few, to act on
    by_status: Counter[str] = field(default_factory=Counter)     # recovered / refused / failed / not_sent -> devices
    run_id: int | None = None
    # Per device, only when asked (collect_outcomes=True): a million-device estate's would not fit in memory;
    # the run's outcome table (SendRuns.outcomes) holds every device's.
    outcomes: dict[str, DeviceOutcome] = field(default_factory=dict)

    def merge(self, other: SendReport) -> None:
        self.devices += other.devices
        self.answered += other.answered
        self.verified += other.verified
        self.refused.update(other.refused)
        self.statuses.update(other.statuses)
        self.by_status.update(other.by_status)
        self.problems.extend(other.problems[:max(0, MAX_PROBLEMS - len(self.problems))])
        self.outcomes.update(other.outcomes)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "run": self.run_id, "devices": self.devices, "answered": self.answered, "verified": self.verified,
            "by_status": dict(self.by_status), "refused": dict(self.refused), "statuses": dict(self.statuses),
            "problems": self.problems}
        if self.outcomes:
            out["outcomes"] = {device: outcome.as_dict() for device, outcome in self.outcomes.items()}
        return out

    def summary_json(self) -> str:
        """The report's counts (no outcomes), as a chunk stores its part."""
        return json.dumps({"devices": self.devices, "answered": self.answered, "verified": self.verified,
                           "refused": self.refused, "statuses": self.statuses, "by_status": self.by_status,
                           "problems": self.problems}, separators=(",", ":"))

    @classmethod
    def from_summary(cls, text: str) -> SendReport:
        data = json.loads(text)
        return cls(data["devices"], data["answered"], data["verified"], Counter(data["refused"]),
                   Counter(data["statuses"]), list(data["problems"]), Counter(data["by_status"]))


@dataclass(frozen=True, eq=False)   # compared by identity: a run's order is one object, a key of payload caches
class Order:
    """What a send sends, all public (a send run stores it): the mode, the roles whose cells are replaced, the
    placements, the originator counter every command carries, and the devices' clock when fixed."""

    mode_name: str
    roles: tuple[str, ...]
    placements: Mapping[str, Any]         # normalised: role name -> "acb"; "root" -> DER; "path" -> (DER, ...)
    counter: int
    at: dt.datetime | None = None

    @property
    def mode(self) -> CredentialsReplacementMode:
        return MODES[self.mode_name]

    def placements_json(self) -> str:
        out: dict[str, Any] = {}
        for key, value in self.placements.items():
            out[key] = value.hex() if isinstance(value, bytes) else [v.hex() for v in value] \
                if isinstance(value, tuple) else value
        return json.dumps(out, sort_keys=True)

    @staticmethod
    def placements_from_json(text: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in json.loads(text).items():
            out[key] = bytes.fromhex(value) if key == "root" else tuple(bytes.fromhex(v) for v in value) \
                if key == "path" else value
        return out


@dataclass(frozen=True)
class Keys:
    """The secrets a send needs beyond what the sandbox holds: in this process's memory only, never stored."""

    signer: ec.EllipticCurvePrivateKey | None = None
    symmetric_key: bytes | None = None

    def __repr__(self) -> str:
        return f"Keys(signer={'<held>' if self.signer else None}, symmetric_key=" \
               f"{'<held>' if self.symmetric_key else None})"


@dataclass(frozen=True)
class Device:
    """A device as the sender reads it: its Device Certificates by serial, its cells as stored, the anchors."""

    device_id: str
    ds_serial: str | None
    ka_serial: str | None
    cells: list[list[Any]]
    anchors: Mapping[int, tuple[str, str | None, bytes]]   # anchor id -> (serial, subject EUI, DER)


class CommandSender:
    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.repository = CertificateRepository(instance.database)
        self.test_keys = TestKeyStore(instance)
        instance.hierarchy.version(now=True)   # a rotation made a moment ago, by another process, counts
        self.issuing_oca = instance.hierarchy.certificate("issuing_oca").public_bytes(Encoding.DER)
        # The recovery cells take the hierarchy's current Recovery certificate (a DCC certificate with no
        # Organisation holder in the Repository's sense).
        self.recovery_certificate = instance.hierarchy.certificate("recovery").public_bytes(Encoding.DER)
        self.originator = instance.policies.environment.dcc_entity_identifiers["recovery"]
        self._newest: dict[tuple[str, int, str], list[bytes]] = {}
        self._test_key: dict[str, ec.EllipticCurvePrivateKey | EstateError] = {}
        self._payloads: dict[tuple[object, ...], UpdateSecurityCredentials | EstateError] = {}
        # id(payload) -> (payload, (originator, counter), the signed octets before and after the business target):
        # kept with the payload so an id is never reused
        self._encoded: dict[int, tuple[UpdateSecurityCredentials, tuple[Eui64, int], tuple[bytes, bytes]]] = {}
        # What a response's payload says, by the octets (and the header fields that decide how they decode): a
        # chunk's devices mostly answer alike, the signature and header checked per device.
        self._answers: dict[tuple[int, int, bytes], Checked] = {}

    # --- the one call a caller makes -----------------------------------------------------------------------

    def send(self, mode_name: str, roles: Sequence[str], device_ids: Iterable[str] | None = None, *,
             signer: ec.EllipticCurvePrivateKey | None = None, symmetric_key: bytes | None = None,
             placements: Mapping[str, Any] | None = None, chunk_size: int = 500, now: dt.datetime | None = None,
             progress: Callable[[int], None] | None = None, share: tuple[int, int] | None = None,
             collect_outcomes: bool = False, requested_by: str = "smki estate send") -> SendReport:
        """Send one command per device (all devices when ``device_ids`` is None), replacing the cells of
        ``roles`` (and, in mode 9, the root); as a send run of chunks of ``chunk_size`` devices, each delivered in
        one transaction, sent in this process. ``share`` (k, n): only the devices whose number is k modulo n.
        ``collect_outcomes``: the report names every device's outcome (else only counts; the run's outcome table
        has them all). An interrupted send resumes with ``SendRuns(instance).run_here(report.run_id, ...)``."""
        from smki.estate.send_runs import SendRuns

        order = self.order(mode_name, roles, placements, now)
        keys = self.keys(order, signer, symmetric_key)
        runs = SendRuns(self.instance, sender=self)
        run_id = runs.create(order, device_ids, share=share, chunk_size=chunk_size, holder="process",
                             requested_by=requested_by)
        runs.run_here(run_id, keys, progress=progress)
        return runs.report(run_id, collect_outcomes=collect_outcomes)

    # --- what is asked -----------------------------------------------------------------------------------

    def order(self, mode_name: str, roles: Sequence[str], placements: Mapping[str, Any] | None = None,
              now: dt.datetime | None = None) -> Order:
        """The request checked and normalised (``ES:SND1``, ``ES:SND5``), with its counter: the sending moment in
        milliseconds, which only grows whoever sends."""
        if mode_name not in MODES:
            raise EstateError(BAD_REQUEST, f"--mode must be one of {', '.join(MODES)}, not {mode_name!r}",
                              field="mode")
        mode = MODES[mode_name]
        roles = tuple(dict.fromkeys(roles))
        unknown = [r for r in roles if r not in ROLE_BY_NAME]
        if unknown or (not roles and mode is not Mode.ANY_BY_CONTINGENCY):
            raise EstateError(BAD_REQUEST, f"--cells names roles among {', '.join(ROLE_BY_NAME)}; got "
                              f"{', '.join(unknown) or 'none'}", field="cells")
        own = PARTY_MODES.get(mode)
        if own is not None and set(roles) != {own}:
            raise EstateError(BAD_REQUEST, f"a {mode_name} command replaces only the {own} cells: --cells {own}",
                              field="cells")
        placed = self._placements(mode, roles, placements or {})
        moment = now or dt.datetime.now(dt.UTC)
        return Order(mode_name, roles, placed, int(moment.timestamp() * 1000), now)

    def _placements(self, mode: CredentialsReplacementMode, roles: Sequence[str],
                    placements: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in placements.items():
            if key == "root":
                anchor = read_certificate(bytes(value)) if isinstance(value, bytes | bytearray) else None
                if anchor is None or not anchor.is_ca or "keyCertSign" not in anchor.key_usages:
                    raise EstateError(BAD_PLACEMENT, "placements['root'] is the DER of the new Root OCA certificate "
                                      "(a CA certificate with keyCertSign)", field="placements")
                out["root"] = bytes(value)
            elif key == "path":
                path = tuple(bytes(v) for v in value) if isinstance(value, list | tuple) else ()
                if not path or any(read_certificate(der) is None for der in path):
                    raise EstateError(BAD_PLACEMENT, "placements['path'] is a list of DER CA certificates",
                                      field="placements")
                out["path"] = path
            elif key in roles and value == ACB:
                out[key] = ACB
            else:
                raise EstateError(BAD_PLACEMENT, f"placements: {key!r}: {value!r} is none of 'root' (DER), 'path' "
                                  "(DERs) or '<a role of --cells>': 'acb'", field="placements")
        if (mode is Mode.ANY_BY_CONTINGENCY) != ("root" in out):
            raise EstateError(BAD_PLACEMENT, "a contingency command, and only it, places a new Root OCA: "
                              "placements={'root': DER}", field="placements")
        if any(v == ACB for v in out.values()) and mode not in DCC_KEYS:
            raise EstateError(BAD_PLACEMENT, "the ACB's certificates are placed in another role's cells by the "
                              "Recovery key (method 2): --mode recovery", field="placements")
        return out

    def keys(self, order: Order, signer: ec.EllipticCurvePrivateKey | None = None,
             symmetric_key: bytes | None = None) -> Keys:
        """The secrets the order needs: those given, else the key store's while the key is not in custody
        (``ES:SND4`` once it is)."""
        label = DCC_KEYS.get(order.mode)
        if label is not None and signer is None:
            signer = self._held(label, lambda: self.instance.keystore.signer(label)
                                if self.instance.keystore.has(label) else None)
        if order.mode is Mode.ANY_BY_CONTINGENCY and symmetric_key is None:
            symmetric_key = self._held("contingency", lambda: self.instance.custody.get_secret(
                CONTINGENCY_WRAPPING_KEY))
        if symmetric_key is not None and (not isinstance(symmetric_key, bytes) or not symmetric_key):
            raise EstateError(BAD_REQUEST, "the plaintext symmetric key is octets", field="symmetric_key")
        return Keys(signer, symmetric_key)

    @staticmethod
    def _held(name: str, read: Callable[[], Any]) -> Any:
        try:
            held = read()
        except ConfigurationError:
            held = None
        if held is None:
            raise EstateError(KEY_IN_CUSTODY, f"the {name} key is not in this sandbox's key store: it is in the "
                              "custody of the Key Custodians. Send under a ceremony: the SMKI PMA decides (`smki "
                              f"ceremony decide {name} --purpose use`), then `smki estate send ... "
                              "--ceremony-decision N --custodian-share FILE ...` with a quorum of share files.",
                              field="signer")
        return held

    # --- building ------------------------------------------------------------------------------------------

    def command(self, order: Order, keys: Keys, device: Device,
                device_ka: ec.EllipticCurvePublicKey | None) -> bytes:
        """The wire octets of the device's command (``EstateError`` when none can be built)."""
        mode = order.mode
        payload = self._payload(order, device, keys.symmetric_key)
        target = _eui(device.device_id)
        if mode in DCC_KEYS:
            assert keys.signer is not None   # Keys made by self.keys()
            return self._signed(self.originator, target, order.counter, payload, keys.signer)
        role = ROLE_BY_NAME[PARTY_MODES[mode]]
        signing_cell = self._cell(device, role, "digitalSignature")
        acb_cell = self._cell(device, RemotePartyRole.ACCESS_CONTROL_BROKER, "keyAgreement")
        signer = keys.signer or self._test_private_key(signing_cell[0])
        acb_key = self._test_private_key(acb_cell[0])
        if device_ka is None:
            raise EstateError(UNVERIFIED, f"device {device.device_id}'s key-agreement certificate is not in the "
                              "Repository")
        if signing_cell[1] is None:
            raise EstateError(NOTHING_TO_PLACE, f"the device's {role.name.lower()} signing cell names no holder")
        signed = sign(build.command(Eui64.parse(signing_cell[1]), target, order.counter, payload), signer)
        return encode(wrap_with_mac(signed, acb_key, device_ka))

    def _signed(self, originator: Eui64, target: Eui64, counter: int, payload: UpdateSecurityCredentials,
                signer: ec.EllipticCurvePrivateKey) -> bytes:
        """``sign_and_encode(build.command(originator, target, counter, payload), signer)``, with everything but
        the business target (the header's fixed-size fields around it, and the payload's encoding: the
        certificates' DER, most of the octets) written once per payload rather than once per device: only the
        target and the signature differ. The first command of each payload is made by the codec as well and
        compared, so this path can only ever give the codec's octets."""
        encoded = self._encoded.get(id(payload))
        if encoded is None or encoded[0] is not payload or encoded[1] != (originator, counter):
            pre = build.command(originator, target, counter, payload)
            header = header_octets(pre.header)
            if header[_TARGET_AT:_TARGET_AT + EUI_LENGTH] != target.value:
                raise EstateError(BAD_REQUEST, "the command header's layout disagrees with the codec's")
            tail = write_length(len(body := encode_payload(payload, LengthEncoding.DER))) + body
            around = (header[:_TARGET_AT], header[_TARGET_AT + EUI_LENGTH:] + tail)
            if len(self._encoded) > 4096:
                self._encoded.clear()
            self._encoded[id(payload)] = (payload, (originator, counter), around)
            if to_be_signed(pre) != around[0] + target.value + around[1]:   # the codec's own layout, checked once
                raise EstateError(BAD_REQUEST, "the command's encoding disagrees with the codec's")
            return sign_and_encode(pre, signer)
        before, after = encoded[2]
        signed = before + target.value + after
        r, s = decode_dss_signature(signer.sign(signed, _ECDSA))
        return b"".join((_SIGNING_TAG, signed, _SIGNATURE_FIELD, r.to_bytes(32, "big"), s.to_bytes(32, "big")))

    def _test_private_key(self, serial: str) -> ec.EllipticCurvePrivateKey:
        held = self._test_key.get(serial)
        if held is None:
            try:
                held = self.test_keys.private_key(serial)
            except EstateError as error:
                held = error
            self._test_key[serial] = held
        if isinstance(held, EstateError):
            raise held
        return held

    def _payload(self, order: Order, device: Device, symmetric_key: bytes | None) -> UpdateSecurityCredentials:
        """The command's payload: the same for every device whose cells hold the same certificates (the
        signature covers the header, which names the device), so it is built once per such group and its
        encoding (DER of the certificates) reused."""
        key = (order, symmetric_key, tuple(map(tuple, device.cells)))   # the cells' states too: a finer key
        cached = self._payloads.get(key)
        if cached is None:
            if len(self._payloads) > 4096:
                self._payloads.clear()
            cached = self._payloads[key] = self._build_payload(order, device, symmetric_key)
        if isinstance(cached, EstateError):
            raise cached
        return cached

    def _build_payload(self, order: Order, device: Device,
                       symmetric_key: bytes | None) -> UpdateSecurityCredentials | EstateError:
        mode = order.mode
        codes = {int(ROLE_BY_NAME[r]): r for r in order.roles}
        replacements = []
        if "root" in order.placements:
            replacements.append(TrustAnchorReplacement(order.placements["root"], ROOT_CELL))
        for role, usage, cell_usage, anchor_id, _state in device.cells:
            if role not in codes or anchor_id is None:
                continue
            if order.placements.get(codes[role]) == ACB:
                der = self._acb_certificate(usage)
            elif role == RemotePartyRole.RECOVERY:
                der = self.recovery_certificate
            else:
                _serial, holder, _der = device.anchors[anchor_id]
                if holder is None:
                    continue
                others = {device.anchors[c[3]][2] for c in device.cells
                          if c[3] is not None and (c[0], c[1], c[2]) != (role, usage, cell_usage)}
                der = self._newest_of(holder, role, usage, others)
            if der is not None:
                replacements.append(TrustAnchorReplacement(der, TrustAnchorCell(
                    RemotePartyRole(role), KEY_USAGE_BY_NAME[usage], CellUsage(cell_usage))))
        if not replacements:
            return EstateError(NOTHING_TO_PLACE, "the device holds no cell of those roles with a certificate to "
                               "replace it with")
        authorising = AUTHORISING.get(mode)
        control = AuthorisingRemotePartyControl(
            mode, order.counter, plaintext_symmetric_key=symmetric_key if mode is Mode.ANY_BY_CONTINGENCY else None,
            authorising_cell=None if authorising is None else TrustAnchorCell(
                authorising, KEY_USAGE_BY_NAME["digitalSignature"]))
        path = order.placements.get("path") or (self.issuing_oca,)
        return UpdateSecurityCredentials(control, tuple(replacements), tuple(path))

    @staticmethod
    def _cell(device: Device, role: RemotePartyRole, usage: str) -> tuple[str, str | None, bytes]:
        for cell_role, cell_usage, cell_kind, anchor_id, _state in device.cells:
            if (cell_role, cell_usage, cell_kind) == (int(role), usage, 0) and anchor_id is not None:
                return device.anchors[anchor_id]
        raise EstateError(NOTHING_TO_PLACE, f"the device holds no {role.name.lower()} {usage} certificate")

    def _acb_certificate(self, usage: str) -> bytes | None:
        """The DCC Access Control Broker's newest issued certificate of this key usage (method 2)."""
        eui = self.instance.policies.environment.dcc_entity_identifiers["access_control_broker"].hex
        return self._newest_of(eui, int(RemotePartyRole.ACCESS_CONTROL_BROKER), usage, set())

    def _newest_of(self, holder: str, role: int, usage: str, held_elsewhere: set[bytes]) -> bytes | None:
        """The holder's newest issued certificate for the role and usage that no other cell of the device holds
        (so a supplier's management and top-up key-agreement cells keep different certificates)."""
        key = (holder, role, usage)
        if key not in self._newest:
            page = self.repository.search(subject_eui=holder, role=role, usage=REPOSITORY_USAGE[usage], status="I",
                                          kind="organisation", limit=1000)
            found: list[bytes] = []
            full = self.repository.find_many(record.serial for record in page.records)   # one query, not one each
            for record in reversed(page.records):
                der = next((f.der for f in full.get(normalised_serial(record.serial), []) if f.issuer == record.issuer),
                           None)
                if der is not None:
                    found.append(der)
            self._newest[key] = found
        return next((der for der in self._newest[key] if der not in held_elsewhere), None)

    def certificate_keys(self, serials: Iterable[str | None]) -> dict[str, ec.EllipticCurvePublicKey]:
        """The public keys of the certificates with these serials (Device Certificates), by serial as the estate
        stores it; one Repository query."""
        wanted = {serial for serial in serials if serial is not None}
        found = self.repository.find_many(wanted)
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for serial in wanted:
            records = found.get(normalised_serial(serial), [])
            if len(records) == 1 and records[0].der is not None:
                public = x509.load_der_x509_certificate(records[0].der).public_key()
                if isinstance(public, ec.EllipticCurvePublicKey):
                    keys[serial] = public
        return keys

    # --- checking ----------------------------------------------------------------------------------------

    def outcome(self, order: Order, device: Device, delivered: Delivered,
                device_key: ec.EllipticCurvePublicKey | None) -> Checked:
        """What became of the device's command (with a line for the report when it was not recovered)."""
        result = delivered.processed
        if result.refusal is not None:
            status = FAILED if result.refusal.code in TRANSIT else REFUSED
            return Checked(DeviceOutcome(status, code=result.refusal.code), result.refusal.message)
        answer = result.answer
        if answer is None:
            return Checked(DeviceOutcome(FAILED, code=UNVERIFIED), "accepted but answered nothing")
        try:
            if device_key is None:
                raise EstateError(UNVERIFIED, "its Device Certificate is not in the Repository")
            frame = _verified(answer, device_key)
            checked = self._answer(answer, frame)
        except (GbcsError, EstateError) as error:
            return Checked(DeviceOutcome(FAILED, code=UNVERIFIED), f"the response does not verify: {error.message}",
                           answered=True)
        header = frame.header
        if checked is None or header.business_originator.hex != device.device_id \
                or header.originator_counter != order.counter:
            return Checked(DeviceOutcome(FAILED, code=UNVERIFIED), "the answer is not this device's response to the "
                           "command", answered=True)
        return checked

    def _answer(self, answer: bytes, frame: SigningFrame) -> Checked | None:
        """What the verified answer's payload says (None: it is not a response), read once per distinct payload
        (``GbcsError`` when the codec refuses it)."""
        header = frame.header
        key = (int(header.cra_flag), header.message_code, answer[frame.payload_start:frame.payload_end])
        known = self._answers.get(key)
        if known is None:
            message = apdu_from_frame(answer, frame)
            if not isinstance(message.payload, UpdateSecurityCredentialsResponse):
                return None
            known = _response_checked(message.payload)
            if len(self._answers) > 1024:
                self._answers.clear()
            self._answers[key] = known
        return known

    @staticmethod
    def tally(report: SendReport, device_id: str, checked: Checked, collect: bool) -> None:
        outcome = checked.outcome
        report.devices += 1
        report.by_status[outcome.status] += 1
        report.answered += checked.answered
        report.verified += checked.verified
        for name, code in outcome.codes.items():
            report.statuses[_status_label(name, code)] += 1
        if not checked.verified and outcome.code is not None:
            report.refused[outcome.code] += 1
        if checked.problem is not None and len(report.problems) < MAX_PROBLEMS:
            report.problems.append(f"{outcome.code} {device_id}: {checked.problem}")
        if collect:
            report.outcomes[device_id] = outcome


@dataclass(frozen=True)
class Checked:
    outcome: DeviceOutcome
    problem: str | None
    answered: bool = False     # a signed answer came back
    verified: bool = False     # ... verified with the device's certificate, and answers this command


def _verified(answer: bytes, key: ec.EllipticCurvePublicKey) -> SigningFrame:
    """The frame of the device's answer, its signature verified, the frame read once (a response is a General
    Signing APDU; anything else, trailing octets or a bad signature is a ``GbcsError``)."""
    if answer[:1] != _SIGNING_TAG:
        message = decode(answer)   # the codec names what it is
        raise GbcsError(UNKNOWN_APDU, f"a device answers with a General Signing APDU, not a {type(message).__name__}")
    frame = read_whole_signing_frame(answer)
    verify_frame_signature(answer, frame, key)
    return frame


def _response_checked(response: UpdateSecurityCredentialsResponse) -> Checked:
    """A verified response of this device to this command: recovered when every cell succeeded."""
    outcome = response.outcome
    codes = {cell_name(o.cell): int(o.status) for o in outcome.outcomes} if outcome is not None else {}
    if outcome is None or any(o.status is not StatusCode.SUCCESS for o in outcome.outcomes):
        bad = ", ".join(f"{name}: {_status_name(code)}" for name, code in codes.items()
                        if code != StatusCode.SUCCESS)
        return Checked(DeviceOutcome(FAILED, codes, CELLS_NOT_REPLACED),
                       f"cells not replaced ({bad or 'no outcome'})", answered=True, verified=True)
    return Checked(DeviceOutcome(RECOVERED, codes), None, answered=True, verified=True)


def _eui(device_id: str) -> Eui64:
    """``Eui64.parse(device_id)``, for the compact form the estate stores without the parser's regular
    expressions (the other forms, and errors, through the parser)."""
    if len(device_id) == 16:
        try:
            value = bytes.fromhex(device_id)
        except ValueError:
            value = b""
        if len(value) == EUI_LENGTH:
            return Eui64(value)
    return Eui64.parse(device_id)


@lru_cache(maxsize=1024)
def _status_label(name: str, code: int) -> str:
    """A report's line for a cell's outcome: ``supplier digitalSignature: success``."""
    return f"{name}: {_status_name(code)}"


def _status_name(code: int) -> str:
    try:
        return StatusCode(code).name.lower()
    except ValueError:
        return str(code)


def device_ids_of(device_ids: Iterable[str]) -> list[str]:
    """Device IDs as the estate stores them (``ES:DEV2`` for one that is not an EUI-64)."""
    out = set()
    for device in device_ids:
        try:
            out.add(Eui64.parse(device).hex)
        except InvalidEui64 as error:
            raise EstateError("ES:DEV2", f"{device!r} is not a Device ID: expected an EUI-64 of 16 hexadecimal "
                              "digits", field="device") from error
    return sorted(out)


def keys_of_device(device: Device, order: Order) -> list[str | None]:
    """The serials of the Device Certificates a chunk needs for this device: its DS (to verify its response)
    and, for a MAC-wrapped mode, its KA (to MAC the command)."""
    return [device.ds_serial] + ([device.ka_serial] if order.mode in PARTY_MODES else [])


