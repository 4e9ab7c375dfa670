"""Export of a filtered range: events.jsonl + events.csv + a signed manifest, in one zip.

Every JSON line carries the event's full hashed body plus ``prev_hash`` and ``hash``, so each
event can be re-hashed offline; the manifest names the filters, the files' sha256 and the
range, and is signed with the audit key. ``manage.py audit_verify --export FILE`` checks
all of it without a database.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from apps.audit import signing
from apps.audit.chain import HASH_VERSION, body_of, canonical_json, line_hash
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.tasks import sign_by_signer

FORMAT = "rag-audit-export/1"
CSV_COLUMNS = ["sequence", "created_at", "event_type", "outcome", "actor_id", "actor_username", "actor_roles",
               "session_hash", "ip_address", "user_agent", "request_id", "question", "answer", "collections",
               "document_id", "prev_hash", "hash"]


def _line(event: AuditEvent) -> dict[str, Any]:
    line = {"body": body_of(event), "prev_hash": event.prev_hash, "hash": event.hash}
    if event.hash_version == HASH_VERSION:  # the database's format (apps.audit.chain.line_hash)
        line.update(hash_version=event.hash_version, db_role=event.db_role)
    return line


def _csv_row(event: AuditEvent) -> list[Any]:
    p = event.payload
    return [event.sequence, event.created_at.isoformat(), event.event_type, event.outcome, event.actor_id or "",
            event.actor_username, " ".join(event.actor_roles), event.session_hash, event.ip_address,
            event.user_agent, event.request_id, p.get("question", ""), p.get("answer", ""),
            " ".join(str(c) for c in p.get("collections_searched", []) or ([p["collection_id"]] if "collection_id" in p else [])),
            p.get("document_id", ""), event.prev_hash, event.hash]


@dataclass(frozen=True)
class Export:
    content: bytes
    file_name: str
    count: int


def audit_export(*, events, filters: dict[str, Any], exported_by) -> Export:
    """Build the zip for ``events`` (a queryset) and audit the export itself."""
    from apps.audit.services import audit_record

    ordered = list(events.order_by("sequence"))
    jsonl = "".join(canonical_json(_line(e)) + "\n" for e in ordered).encode()
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    for event in ordered:
        writer.writerow(_csv_row(event))
    csv_bytes = text.getvalue().encode()
    now = timezone.now()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": now.isoformat(timespec="microseconds"),
        "exported_by": getattr(exported_by, "username", ""),
        "filters": filters,
        "count": len(ordered),
        "first_sequence": ordered[0].sequence if ordered else None,
        "last_sequence": ordered[-1].sequence if ordered else None,
        "files": {"events.jsonl": hashlib.sha256(jsonl).hexdigest(), "events.csv": hashlib.sha256(csv_bytes).hexdigest()},
    }
    signature, public_hex = sign_by_signer(canonical_json(manifest))  # only the signer holds the key
    signed = {"manifest": manifest, "signature": signature, "public_key": public_hex}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("events.jsonl", jsonl)
        archive.writestr("events.csv", csv_bytes)
        archive.writestr("manifest.json", json.dumps(signed, indent=2, sort_keys=True) + "\n")
    audit_record(
        event_type=EventType.AUDIT_EXPORTED, outcome=Outcome.SUCCESS, actor=exported_by,
        payload={"filters": filters, "count": len(ordered), "manifest_sha256":
                 hashlib.sha256(canonical_json(manifest).encode()).hexdigest()},
    )
    return Export(buffer.getvalue(), f"audit-export-{now:%Y%m%dT%H%M%SZ}.zip", len(ordered))


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
    if not signing.verify(canonical_json(manifest).encode(), signed["signature"], key):
        problems.append("manifest signature does not verify")
    for name, content in files.items():
        if hashlib.sha256(content).hexdigest() != manifest["files"][name]:
            problems.append(f"{name} does not match the sha256 in the manifest")
    previous: dict[str, Any] | None = None
    count = 0
    for number, line in enumerate(files["events.jsonl"].decode().splitlines(), start=1):
        record = json.loads(line)
        body = record["body"]
        count += 1
        if line_hash(record) != record["hash"]:
            problems.append(f"event #{body['sequence']} (line {number}): content does not match its hash")
        if previous and body["sequence"] == previous["body"]["sequence"] + 1 and record["prev_hash"] != previous["hash"]:
            problems.append(f"event #{body['sequence']}: link to previous event broken")
        if previous and body["sequence"] <= previous["body"]["sequence"]:
            problems.append(f"event #{body['sequence']}: out of order")
        previous = record
    if count != manifest["count"]:
        problems.append(f"manifest says {manifest['count']} events, file has {count}")
    return problems
