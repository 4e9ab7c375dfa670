"""Export of a filtered range: events.jsonl + events.csv + a signed manifest, in one zip.

Every JSON line carries the event's full hashed body plus ``prev_hash`` and ``hash``, so each
event can be re-hashed offline; question content is sealed in the body (ciphertext, which is
what the chain hashes), and the readable text, or the "erased" marker, is in the line's
unhashed ``readable`` field (covered by the manifest's file hash, not by the chain); the manifest names the filters, the files' sha256 and the
range, and is signed with the audit key. ``manage.py audit_verify --export FILE`` checks
all of it without a database.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from typing import IO, Any

from django.utils import timezone

from apps.audit import signing
from apps.audit.chain import HASH_VERSION, body_of, canonical_json, content_of, line_hash, sha256_hex
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.export_signing import FORMAT, digest_add, line_digest
from apps.audit.signer import sign_export_by_signer
from apps.privacy.masking import mask_content

CSV_COLUMNS = ["sequence", "created_at", "event_type", "outcome", "actor_id", "actor_username", "actor_roles",
               "session_hash", "ip_address", "user_agent", "request_id", "question", "answer", "collections",
               "document_id", "prev_hash", "hash"]


def _line(event: AuditEvent, content: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
    """The exported line. ``content`` is the payload as read (apps.audit.content: sealed
    fields opened or marked erased), ``shown`` the same with personal data masked (need to
    know). A sealed event keeps its ciphertext in the hashed body and carries ``shown`` in the
    unhashed ``readable`` field. An event stored in the clear whose masking changed it carries
    the masked payload in its body, ``masked`` and the sha256 of the content as recorded, so
    its chain link still verifies (the masked text itself cannot be re-hashed)."""
    body = body_of(event)
    line = {"body": body, "prev_hash": event.prev_hash, "hash": event.hash}
    if event.hash_version == HASH_VERSION:  # the database's format (apps.audit.chain.line_hash)
        line.update(hash_version=event.hash_version, db_role=event.db_role)
    if content is not event.payload:
        line["readable"] = shown
    elif shown != event.payload:
        line["masked"] = True
        if event.hash_version == HASH_VERSION:
            line["content_sha256"] = sha256_hex(content_of(event))
        line["body"] = {**body, "payload": shown}
    return line


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"); a question such as "=HYPERLINK(...)" must stay text for the officer who opens it.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_row(event: AuditEvent, shown: dict[str, Any]) -> list[Any]:
    return [csv_cell(v) for v in _csv_values(event, shown)]


def _csv_values(event: AuditEvent, shown: dict[str, Any]) -> list[Any]:
    p = shown
    return [event.sequence, event.created_at.isoformat(), event.event_type, event.outcome, event.actor_id or "",
            event.actor_username, " ".join(event.actor_roles), event.session_hash, event.ip_address,
            event.user_agent, event.request_id, p.get("question", ""), p.get("answer", ""),
            " ".join(str(c) for c in p.get("collections_searched", []) or ([p["collection_id"]] if "collection_id" in p else [])),
            p.get("document_id", ""), event.prev_hash, event.hash]


@dataclass(frozen=True)
class Export:
    file: IO[bytes]  # the zip, at position 0; in memory up to SPOOL_BYTES, then on disk
    file_name: str
    count: int
    size: int

    @property
    def content(self) -> bytes:
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(0)
        return data


SPOOL_BYTES = 8 * 1024 * 1024


class _HashingFile:
    """A spooled temporary file that hashes what is written to it."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        self.sha256 = hashlib.sha256()

    def write(self, text: str) -> None:
        data = text.encode()
        self.sha256.update(data)
        self.file.write(data)


def audit_export(*, events, filters: dict[str, Any], exported_by) -> Export:
    """Build the zip for ``events`` (a queryset) and audit the export itself. Events are
    read in chunks and written to spooled temporary files, so an export of the whole trail
    does not hold it in memory (what the caller streams is ``Export.file``)."""
    from apps.audit.selectors import events_content  # the one read path (masking applies on top of it)
    from apps.audit.services import audit_record

    jsonl, csv_file = _HashingFile(), _HashingFile()
    writer = csv.writer(csv_file)
    writer.writerow(CSV_COLUMNS)
    count = 0
    batch: list[AuditEvent] = []
    ranges: list[list[int]] = []  # the exported sequences as [first, last] runs
    digest = line_digest()  # what the signer must find too (apps.audit.export_signing)

    def write(batch: list[AuditEvent]) -> None:
        for event, content in zip(batch, events_content(batch, viewer=exported_by), strict=True):
            shown = mask_content(content)  # exports are masked like the review pages
            jsonl.write(canonical_json(_line(event, content, shown)) + "\n")
            writer.writerow(_csv_row(event, shown))

    for event in events.order_by("sequence").iterator(chunk_size=2000):
        batch.append(event)
        if len(batch) == 500:
            write(batch)
            batch = []
        count += 1
        if ranges and event.sequence == ranges[-1][1] + 1:
            ranges[-1][1] = event.sequence
        else:
            ranges.append([event.sequence, event.sequence])
        digest_add(digest, event.sequence, event.hash)
    write(batch)
    now = timezone.now()
    request = {
        "exported_at": now.isoformat(timespec="microseconds"),
        "exported_by": getattr(exported_by, "username", ""),
        "filters": filters,
        "files": {"events.jsonl": jsonl.sha256.hexdigest(), "events.csv": csv_file.sha256.hexdigest()},
    }
    # Only the signer holds the key, and it signs only what it re-read (apps.audit.export_signing).
    text, signature, public_hex = sign_export_by_signer(request, ranges)
    manifest: dict[str, Any] = json.loads(text)
    if manifest.get("events_sha256") != digest.hexdigest() or manifest.get("count") != count:
        raise signing.SigningKeyUnavailable("the signer's reading of the events differs from the export's")
    signed = {"manifest": manifest, "signature": signature, "public_key": public_hex}
    output = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, part in (("events.jsonl", jsonl), ("events.csv", csv_file)):
            part.file.seek(0)
            with archive.open(name, "w", force_zip64=True) as member:
                shutil.copyfileobj(part.file, member, 1024 * 1024)
            part.file.close()
        archive.writestr("manifest.json", json.dumps(signed, indent=2, sort_keys=True) + "\n")
    audit_record(
        event_type=EventType.AUDIT_EXPORTED, outcome=Outcome.SUCCESS, actor=exported_by,
        payload={"filters": filters, "count": count, "manifest_sha256":
                 hashlib.sha256(canonical_json(manifest).encode()).hexdigest()},
    )
    size = output.tell()
    output.seek(0)
    return Export(output, f"audit-export-{now:%Y%m%dT%H%M%SZ}.zip", count, size)


def verify_export(data: bytes, *, trusted_public_key: str | None) -> list[str]:
    """Offline check of an export: signature by the pinned key (hex or ``sha256:`` fingerprint;
    never the key inside the export), file hashes, every event's hash, links where contiguous."""
    problems: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        signed = json.loads(archive.read("manifest.json"))
        files = {name: archive.read(name) for name in ("events.jsonl", "events.csv")}
    manifest = signed["manifest"]
    key = signed["public_key"]  # trusted only if it is the operator's pinned key (or its fingerprint)
    if not signing.matches_pin(key, trusted_public_key or ""):
        problems.append("manifest was signed with a different key than the pinned one")
    if manifest.get("format") != FORMAT:
        problems.append(f"export format {manifest.get('format')} was signed by a signer that signed any text "
                        "(not trusted): export it again")
    elif not signing.verify_statement(signing.EXPORT_DOMAIN, canonical_json(manifest), signed["signature"], key):
        problems.append("manifest signature does not verify")
    digest = line_digest()
    for name, content in files.items():
        if hashlib.sha256(content).hexdigest() != manifest["files"][name]:
            problems.append(f"{name} does not match the sha256 in the manifest")
    previous: dict[str, Any] | None = None
    count = 0
    for number, line in enumerate(files["events.jsonl"].decode().splitlines(), start=1):
        record = json.loads(line)
        body = record["body"]
        count += 1
        digest_add(digest, body["sequence"], record["hash"])
        if record.get("masked") and not record.get("content_sha256"):
            problems.append(f"event #{body['sequence']} (line {number}): personal data masked in a format-1 "
                            "event, its hash cannot be checked")
        elif line_hash(record) != record["hash"]:
            problems.append(f"event #{body['sequence']} (line {number}): content does not match its hash")
        if previous and body["sequence"] == previous["body"]["sequence"] + 1 and record["prev_hash"] != previous["hash"]:
            problems.append(f"event #{body['sequence']}: link to previous event broken")
        if previous and body["sequence"] <= previous["body"]["sequence"]:
            problems.append(f"event #{body['sequence']}: out of order")
        previous = record
    if count != manifest["count"]:
        problems.append(f"manifest says {manifest['count']} events, file has {count}")
    if manifest.get("events_sha256") != digest.hexdigest():
        problems.append("the events in the file are not the ones the signer read from the database "
                        "(events_sha256 differs)")
    return problems
