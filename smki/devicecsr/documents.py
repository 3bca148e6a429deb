"""What a batch submission contains, from either channel: the XML ``SubmitCSRBatch`` of the web
service, or the portal's ``.zip`` of ``.csr`` files. Checked in full when submitted (answered
synchronously), read again cheaply when the stored copy is parsed in the background."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import NamedTuple

from smki.devicecsr import xml
from smki.devicecsr.policy import DeviceCsrPolicy

FM_INVALID = "FM:AA1"       # invalid XML (or an invalid zip)
FM_TOO_MANY = "FM:AA2"      # more than 50,000 CSRs
FM_UNKNOWN_BATCH = "FM:AA3"  # unknown BatchId


class Entry(NamedTuple):
    ref: str        # DeviceCSR ID, or the .csr file name
    csr: str        # the CSR as text: base64 DER (XML), or the file's PEM/base64, or base64 of its DER


@dataclass(frozen=True)
class Submission:
    reference: str
    entries: list[Entry]


def check_batch_xml(data: bytes, policy: DeviceCsrPolicy) -> Submission:
    """Every check a SubmitCSRBatch gets before it is accepted; raises XmlRejected (FM:AA1/FM:AA2)."""
    root = xml.parse(data, max_bytes=policy.max_batch_bytes, root="SubmitCSRBatch", code=FM_INVALID)
    csr_tag = xml.tag("DeviceCSR")
    count = sum(1 for child in root if child.tag == csr_tag)
    if count > policy.max_batch_csrs:
        raise xml.XmlRejected(FM_TOO_MANY, f"the batch holds {count} DeviceCSR elements; at most "
                              f"{policy.max_batch_csrs} are accepted. Split it into several batches.")
    seen: dict[str, int] = {}
    for position, child in enumerate(root, start=1):
        if child.tag == csr_tag:
            identifier = child.get("ID")
            if identifier is not None and identifier in seen:
                raise xml.XmlRejected(FM_INVALID, f"DeviceCSR ID {identifier!r} is used twice (elements "
                                      f"{seen[identifier]} and {position}); every ID must be unique.")
            if identifier is not None:
                seen[identifier] = position
    xml.validate(root, FM_INVALID)
    return read_batch_xml(root)


def read_batch_xml(root_or_data: object, max_bytes: int = 1 << 62) -> Submission:
    root = (xml.parse(root_or_data, max_bytes=max_bytes, root="SubmitCSRBatch", code=FM_INVALID)
            if isinstance(root_or_data, bytes) else root_or_data)
    entries = [Entry(child.get("ID"), child.text or "")
               for child in root.iterchildren(xml.tag("DeviceCSR"))]  # type: ignore[union-attr]
    return Submission(root.get("ID") or "", entries)  # type: ignore[union-attr]


def _csr_text(data: bytes) -> str:
    import base64

    if data[:1] == b"\x30":  # DER: keep it as base64 text, which the validator also reads
        return base64.b64encode(data).decode()
    return data.decode("utf-8", "replace")


def check_zip(data: bytes, name: str, policy: DeviceCsrPolicy, max_csr_bytes: int) -> Submission:
    """A portal upload: a zip of at most 50,000 ``*.csr`` files, unique names, at the root."""
    if len(data) > policy.max_batch_bytes:
        raise xml.XmlRejected(FM_INVALID, f"the upload is {len(data)} bytes; at most {policy.max_batch_bytes} "
                              "are accepted.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise xml.XmlRejected(FM_INVALID, f"the upload is not a readable zip file ({exc}).") from None
    files = [m for m in members if not m.is_dir()]
    if len(files) > policy.max_batch_csrs:
        raise xml.XmlRejected(FM_TOO_MANY, f"the zip holds {len(files)} files; at most {policy.max_batch_csrs} "
                              "CSRs are accepted in one upload.")
    if not files:
        raise xml.XmlRejected(FM_INVALID, "the zip holds no .csr files.")
    seen: set[str] = set()
    entries = []
    for member in files:
        filename = member.filename
        if "/" in filename or "\\" in filename:
            raise xml.XmlRejected(FM_INVALID, f"{filename!r} is in a folder; put every .csr file at the root "
                                  "of the zip.")
        if not filename.lower().endswith(".csr") or len(filename) > 255:
            raise xml.XmlRejected(FM_INVALID, f"{filename!r} is not a .csr file (name ending .csr, at most "
                                  "255 characters); the zip may hold only CSR files.")
        if filename in seen:
            raise xml.XmlRejected(FM_INVALID, f"{filename!r} appears twice in the zip; names must be unique.")
        seen.add(filename)
        if member.file_size > max_csr_bytes:  # checked before inflating: no zip bombs
            raise xml.XmlRejected(FM_INVALID, f"{filename!r} is {member.file_size} bytes; a CSR is at most "
                                  f"{max_csr_bytes}.")
        try:
            content = archive.read(member)[: max_csr_bytes + 1]
        except (zipfile.BadZipFile, ValueError, NotImplementedError, RuntimeError) as exc:
            raise xml.XmlRejected(FM_INVALID, f"{filename!r} cannot be read from the zip ({exc}).") from None
        entries.append(Entry(filename, _csr_text(content)))
    return Submission(name, entries)
