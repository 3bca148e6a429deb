"""Sending CS02b commands to the simulated estate (issue 13 item 5): build, sign, (as the ACB) MAC-wrap, deliver,
and check every answer.

Who signs:

- ``recovery`` (mode 8): the DCC's Recovery key, through the instance's key store (``keystore.signer``), as
  the Recovery certificate's Entity ID. No MAC: recovery works when the ACB cannot.
- ``supplier`` (mode 2, supplierBySupplier): the device's supplier, with the TEST key the sandbox holds for the
  certificate in the device's supplier signing cell (:class:`smki.estate.testkeys.TestKeyStore`: demo and drill
  Parties only; a real Party's key is never here, and its devices are reported ``ES:KEY2``), MAC-wrapped with
  the test key of the certificate in the device's ACB key-agreement cell.

What is placed: in each target cell, the newest issued Organisation Certificate of the cell's current holder
(its Entity ID, role and key usage) in the Repository; a prepayment top-up cell takes the second newest when
there are two, as at installation. The command carries the Issuing OCA as its certification path.

The originator counter (and sequence number) is the sending moment in milliseconds: it only grows, whoever sends.
Every answer is checked: a response must verify with the device's own Device Certificate (read from the
Repository), come from the device, and answer the command's counter.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from repository.store import CertificateRepository, normalised_serial
from smki.bootstrap import RECOVERY_KEY
from smki.core.errors import SmkiError
from smki.core.eui64 import Eui64
from smki.estate.device import KEY_USAGE_BY_NAME, NAME_BY_KEY_USAGE
from smki.estate.models import EstateAnchor, EstateDevice
from smki.estate.plan import REPOSITORY_USAGE, EstateError
from smki.estate.processing import deliver
from smki.estate.testkeys import TestKeyStore
from smki.gbcs import (
    AuthorisingRemotePartyControl,
    CellUsage,
    CredentialsReplacementMode,
    GbcsError,
    GeneralSigning,
    RemotePartyRole,
    TrustAnchorCell,
    TrustAnchorReplacement,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsResponse,
    build,
    decode,
    encode,
    sign,
    sign_and_encode,
    verify_signature,
    wrap_with_mac,
)
from smki.instance import Instance

BAD_REQUEST = "ES:SND1"
NOTHING_TO_PLACE = "ES:SND2"
UNVERIFIED = "ES:SND3"
MODES = {"recovery": CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY,
         "supplier": CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER}
ROLE_BY_NAME = {"recovery": RemotePartyRole.RECOVERY, "supplier": RemotePartyRole.SUPPLIER,
                "networkOperator": RemotePartyRole.NETWORK_OPERATOR,
                "accessControlBroker": RemotePartyRole.ACCESS_CONTROL_BROKER,
                "transitionalCoS": RemotePartyRole.TRANSITIONAL_COS, "wanProvider": RemotePartyRole.WAN_PROVIDER}


def parse_share(text: str) -> tuple[int, int]:
    """``K/N`` (the devices numbered K modulo N) as a pair, or ``ES:SND1``."""
    k, slash, n = text.partition("/")
    if not (slash and k.strip().isdigit() and n.strip().isdigit() and 0 <= int(k) < int(n)):
        raise EstateError(BAD_REQUEST, f"--share is K/N with 0 <= K < N (this sender's share of N), not {text!r}",
                          field="share")
    return int(k), int(n)


@dataclass
class SendReport:
    devices: int = 0
    answered: int = 0                    # signed responses received
    verified: int = 0                    # ... that verified with the device's certificate and matched the command
    refused: Counter[str] = field(default_factory=Counter)       # code -> devices (refused, or not sent)
    statuses: Counter[str] = field(default_factory=Counter)      # "role keyUsage: status" -> cells
    problems: list[str] = field(default_factory=list)            # the first few, to act on

    def as_dict(self) -> dict[str, object]:
        return {"devices": self.devices, "answered": self.answered, "verified": self.verified,
                "refused": dict(self.refused), "statuses": dict(self.statuses), "problems": self.problems}


@dataclass(frozen=True)
class _Device:
    device_id: str
    ds_serial: str | None
    ka_serial: str | None
    cells: list[list]
    anchors: dict[int, tuple[str, str | None, bytes]]   # anchor id -> (serial, subject EUI, DER)


class CommandSender:
    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.repository = CertificateRepository(instance.database)
        self.test_keys = TestKeyStore(instance)
        self.issuing_oca = instance.hierarchy.certificate("issuing_oca").public_bytes(Encoding.DER)
        self._newest: dict[tuple[str, int, str], list[bytes]] = {}
        self._device_keys: dict[str, ec.EllipticCurvePublicKey] = {}   # the chunk in hand's
        self._payloads: dict[tuple[object, ...], UpdateSecurityCredentials | EstateError] = {}

    def send(self, mode_name: str, roles: Sequence[str], device_ids: Iterable[str] | None = None, *,
             chunk_size: int = 500, now: dt.datetime | None = None,
             progress: Callable[[int], None] | None = None, share: tuple[int, int] | None = None) -> SendReport:
        """Send one command per device (all devices when ``device_ids`` is None), replacing the cells of
        ``roles``; deliver them in chunks, one transaction each; check every answer. ``share`` (k, n): only
        the devices whose number is k modulo n, so that n senders at once (processes, machines) share an
        estate without sending any device two commands."""
        if mode_name not in MODES:
            raise EstateError(BAD_REQUEST, f"--mode must be one of {', '.join(MODES)}, not {mode_name!r}",
                              field="mode")
        unknown = [r for r in roles if r not in ROLE_BY_NAME]
        if unknown or not roles:
            raise EstateError(BAD_REQUEST, f"--cells names roles among {', '.join(ROLE_BY_NAME)}; got "
                              f"{', '.join(unknown) or 'none'}", field="cells")
        if share is not None and not 0 <= share[0] < share[1]:
            raise EstateError(BAD_REQUEST, f"a share is (k, n) with 0 <= k < n, not {share}", field="share")
        mode = MODES[mode_name]
        if mode is CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER and set(roles) != {"supplier"}:
            raise EstateError(BAD_REQUEST, "a supplierBySupplier command replaces only the supplier's cells: "
                              "--cells supplier", field="cells")
        moment = now or dt.datetime.now(dt.UTC)
        counter = int(moment.timestamp() * 1000)
        self._payloads = {}
        report = SendReport()
        wanted = None if device_ids is None else sorted({Eui64.parse(d).hex for d in device_ids})
        for chunk in self._chunks(wanted, chunk_size, share):
            # The chunk's Device Certificates in one Repository query, not one per device.
            self._device_keys = self._certificate_keys(
                [d.ds_serial for d in chunk] + ([d.ka_serial for d in chunk] if mode is not
                                                CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY
                                                else []))
            commands: dict[str, bytes] = {}
            for device in chunk:
                report.devices += 1
                try:
                    commands[device.device_id] = self._command(mode, roles, device, counter)
                except SmkiError as error:
                    self._problem(report, error.code, f"{device.device_id}: {error.message}")
            delivered = deliver(self.instance.database, commands, moment) if commands else []
            by_id = {d.device_id: d for d in chunk}
            for item in delivered:
                result = item.processed
                if result.refusal is not None:
                    self._problem(report, result.refusal.code, f"{item.device_id}: {result.refusal.message}")
                    continue
                self._check(report, by_id[item.device_id], result.answer, counter)
            if progress is not None:
                progress(len(chunk))
        return report

    # --- building --------------------------------------------------------------------------------------

    def _command(self, mode: CredentialsReplacementMode, roles: Sequence[str], device: _Device,
                 counter: int) -> bytes:
        payload = self._payload(mode, roles, device, counter)
        target = Eui64.parse(device.device_id)
        if mode is CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY:
            originator = self.instance.policies.environment.dcc_entity_identifiers["recovery"]
            return sign_and_encode(build.command(originator, target, counter, payload),
                                   self.instance.keystore.signer(RECOVERY_KEY))
        supplier_cell = self._cell(device, RemotePartyRole.SUPPLIER, "digitalSignature")
        acb_cell = self._cell(device, RemotePartyRole.ACCESS_CONTROL_BROKER, "keyAgreement")
        supplier_key = self.test_keys.private_key(supplier_cell[0])
        acb_key = self.test_keys.private_key(acb_cell[0])
        device_ka = self._device_keys.get(device.ka_serial or "")
        if device_ka is None:
            raise EstateError(UNVERIFIED, f"device {device.device_id}'s key-agreement certificate is not in the "
                              "Repository")
        assert supplier_cell[1] is not None
        signed = sign(build.command(Eui64.parse(supplier_cell[1]), target, counter, payload), supplier_key)
        return encode(wrap_with_mac(signed, acb_key, device_ka))

    def _payload(self, mode: CredentialsReplacementMode, roles: Sequence[str], device: _Device,
                 counter: int) -> UpdateSecurityCredentials:
        """The command's payload: the same for every device whose cells hold the same certificates (the
        signature covers the header, which names the device), so it is built once per such group and its
        encoding (DER of the certificates) reused."""
        key = (mode, tuple(roles), counter, tuple((c[0], c[1], c[2], c[3]) for c in device.cells))
        cached = self._payloads.get(key)
        if cached is None:
            cached = self._payloads[key] = self._build_payload(mode, roles, device, counter)
        if isinstance(cached, EstateError):
            raise cached
        return cached

    def _build_payload(self, mode: CredentialsReplacementMode, roles: Sequence[str], device: _Device,
                       counter: int) -> UpdateSecurityCredentials | EstateError:
        codes = {int(ROLE_BY_NAME[r]) for r in roles}
        replacements = []
        for role, usage, cell_usage, anchor_id, _state in device.cells:
            if role not in codes or anchor_id is None:
                continue
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
        signer = RemotePartyRole.RECOVERY if mode is CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY \
            else RemotePartyRole.SUPPLIER
        control = AuthorisingRemotePartyControl(mode, counter, authorising_cell=TrustAnchorCell(
            signer, KEY_USAGE_BY_NAME["digitalSignature"]))
        return UpdateSecurityCredentials(control, tuple(replacements), (self.issuing_oca,))

    @staticmethod
    def _cell(device: _Device, role: RemotePartyRole, usage: str) -> tuple[str, str | None, bytes]:
        for cell_role, cell_usage, cell_kind, anchor_id, _state in device.cells:
            if (cell_role, cell_usage, cell_kind) == (int(role), usage, 0) and anchor_id is not None:
                return device.anchors[anchor_id]
        raise EstateError(NOTHING_TO_PLACE, f"the device holds no {role.name.lower()} {usage} certificate")

    def _newest_of(self, holder: str, role: int, usage: str, held_elsewhere: set[bytes]) -> bytes | None:
        """The holder's newest issued certificate for the role and usage that no other cell of the device holds
        (so a supplier's management and top-up key-agreement cells keep different certificates)."""
        key = (holder, role, usage)
        if key not in self._newest:
            page = self.repository.search(subject_eui=holder, role=role, usage=REPOSITORY_USAGE[usage], status="I",
                                          kind="organisation", limit=1000)
            found: list[bytes] = []
            for record in reversed(page.records):
                full = self.repository.get(record.serial, record.issuer)
                if full is not None and full.der is not None:
                    found.append(full.der)
            self._newest[key] = found
        return next((der for der in self._newest[key] if der not in held_elsewhere), None)

    def _certificate_keys(self, serials: Iterable[str | None]) -> dict[str, ec.EllipticCurvePublicKey]:
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

    # --- checking --------------------------------------------------------------------------------------

    def _check(self, report: SendReport, device: _Device, answer: bytes | None, counter: int) -> None:
        if answer is None:
            self._problem(report, UNVERIFIED, f"{device.device_id}: accepted but answered nothing")
            return
        report.answered += 1
        key = self._device_keys.get(device.ds_serial or "")
        try:
            if key is None:
                raise EstateError(UNVERIFIED, "its Device Certificate is not in the Repository")
            verify_signature(answer, key)
            message = decode(answer)
        except (GbcsError, EstateError) as error:
            self._problem(report, UNVERIFIED, f"{device.device_id}: the response does not verify: {error.message}")
            return
        if not (isinstance(message, GeneralSigning) and isinstance(message.payload, UpdateSecurityCredentialsResponse)
                and message.header.business_originator.hex == device.device_id
                and message.header.originator_counter == counter):
            self._problem(report, UNVERIFIED, f"{device.device_id}: the answer is not this device's response to "
                          "the command")
            return
        report.verified += 1
        for outcome in message.payload.outcome.outcomes if message.payload.outcome else ():
            cell = outcome.cell
            name = f"{cell.role.name.lower()} {NAME_BY_KEY_USAGE.get(cell.key_usage, '?')}"
            if cell.cell_usage is CellUsage.PREPAYMENT_TOP_UP:
                name += " (top-up)"
            report.statuses[f"{name}: {outcome.status.name.lower()}"] += 1

    @staticmethod
    def _problem(report: SendReport, code: str, text: str) -> None:
        report.refused[code] += 1
        if len(report.problems) < 20:
            report.problems.append(f"{code} {text}")

    # --- reading the estate ------------------------------------------------------------------------------

    def _chunks(self, wanted: list[str] | None, size: int,
                share: tuple[int, int] | None = None) -> Iterable[list[_Device]]:
        last = ""
        while True:
            with self.instance.database.session() as session:
                statement = select(EstateDevice.device_id, EstateDevice.ds_serial, EstateDevice.ka_serial,
                                   EstateDevice.cells) \
                    .where(EstateDevice.device_id > last).order_by(EstateDevice.device_id).limit(size)
                if wanted is not None:
                    statement = statement.where(EstateDevice.device_id.in_(wanted))
                if share is not None:
                    statement = statement.where(EstateDevice.number % share[1] == share[0])
                rows = session.execute(statement).all()
                if not rows:
                    if wanted is not None and last == "":
                        raise EstateError("ES:DEV1", f"none of the {len(wanted)} devices is in the estate")
                    return
                cells = {row.device_id: json.loads(row.cells) for row in rows}
                ids = {c[3] for device_cells in cells.values() for c in device_cells if c[3] is not None}
                anchors = {a.id: (a.serial, a.subject_eui, a.der) for a in session.execute(
                    select(EstateAnchor.id, EstateAnchor.serial, EstateAnchor.subject_eui, EstateAnchor.der)
                    .where(EstateAnchor.id.in_(ids)))}
            yield [_Device(row.device_id, row.ds_serial, row.ka_serial, cells[row.device_id], anchors)
                   for row in rows]
            last = rows[-1].device_id
