"""Pure functions of the hash chain, shared by writing and verifying."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64
# Columns of AuditEvent filled from the request context; hashed like the rest.
CONTEXT_FIELDS = ("event_id", "session_hash", "ip_address", "user_agent", "request_id", "process")


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_body(
    *,
    sequence: int,
    created_at: datetime,
    event_type: str,
    outcome: str,
    actor_id: int | None,
    actor_username: str,
    actor_roles: list[str],
    payload: dict[str, Any],
    context: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The hashed content of an event. ``context`` holds the request fields (CONTEXT_FIELDS).

    Events written before those fields existed (all empty) keep their original body, so a
    trail started by an earlier release still verifies.
    """
    context = {name: (context or {}).get(name) or "" for name in CONTEXT_FIELDS}
    return {
        **(context if any(context.values()) else {}),
        "sequence": sequence,
        "created_at": created_at.isoformat(timespec="microseconds"),
        "event_type": event_type,
        "outcome": outcome,
        "actor_id": actor_id,
        "actor_username": actor_username,
        "actor_roles": actor_roles,
        "payload": payload,
    }


def event_hash(sequence: int, prev_hash: str, body: dict[str, Any]) -> str:
    material = f"{sequence}|{prev_hash}|{canonical_json(body)}".encode()
    return hashlib.sha256(material).hexdigest()


def body_of(event: Any) -> dict[str, Any]:
    """The hashed body of a stored AuditEvent (or anything with the same attributes)."""
    return event_body(
        sequence=event.sequence,
        created_at=event.created_at,
        event_type=event.event_type,
        outcome=event.outcome,
        actor_id=event.actor_id,
        actor_username=event.actor_username,
        actor_roles=event.actor_roles,
        payload=event.payload,
        context={name: str(getattr(event, name) or "") for name in CONTEXT_FIELDS},
    )


# --- Format 2: written by the database function audit_append (migration 0006) -------------
# The database, not the application, assigns the sequence and the previous hash, and
# records the session's database role. The client sends the event's canonical JSON
# (``content``); the link hash covers the place in the chain, the time, the type and the
# role in the clear, so a tombstone (which keeps those and the content's sha256) can be
# checked against the chain after the event itself expired.
HASH_VERSION = 2


def event_content(*, created_at: datetime | str, event_type: str, outcome: str, actor_id: int | None,
                  actor_username: str, actor_roles: list[str], payload: dict[str, Any],
                  context: dict[str, str] | None = None) -> str:
    """The canonical JSON a format-2 event is stored and hashed from (no sequence: the
    database assigns it)."""
    stamp = created_at if isinstance(created_at, str) else created_at.isoformat(timespec="microseconds")
    return canonical_json({
        **{name: (context or {}).get(name) or "" for name in CONTEXT_FIELDS},
        "created_at": stamp, "event_type": event_type, "outcome": outcome, "actor_id": actor_id,
        "actor_username": actor_username, "actor_roles": actor_roles, "payload": payload,
    })


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def link_hash(sequence: int, prev_hash: str, created_at: str, event_type: str, db_role: str, content_sha256: str) -> str:
    """Format 2, exactly as audit_append computes it in SQL."""
    return sha256_hex(f"{sequence}|{prev_hash}|{created_at}|{event_type}|{db_role}|{content_sha256}")


def content_of(event: Any, stamp: str | None = None) -> str:
    return event_content(
        created_at=stamp or event.created_at, event_type=event.event_type, outcome=event.outcome, actor_id=event.actor_id,
        actor_username=event.actor_username, actor_roles=event.actor_roles, payload=event.payload,
        context={name: str(getattr(event, name) or "") for name in CONTEXT_FIELDS},
    )


def stored_hash(event: Any) -> str:
    """What ``event.hash`` must be, for either format."""
    if getattr(event, "hash_version", 1) == HASH_VERSION:
        stamp = event.created_at.isoformat(timespec="microseconds")
        return link_hash(event.sequence, event.prev_hash, stamp, event.event_type, event.db_role,
                         sha256_hex(content_of(event, stamp)))
    return event_hash(event.sequence, event.prev_hash, body_of(event))


def line_hash(record: dict[str, Any]) -> str:
    """What an exported line's ``hash`` must be: ``{"body", "prev_hash", "hash"}`` plus, for
    format 2, ``hash_version`` and ``db_role`` (apps.audit.exports)."""
    body = record["body"]
    if record.get("hash_version") == HASH_VERSION and record.get("masked") and record.get("content_sha256"):
        # Personal data masked in the export: the link is checked with the recorded content's hash.
        return link_hash(body["sequence"], record["prev_hash"], body["created_at"], body["event_type"],
                         record.get("db_role", ""), record["content_sha256"])
    if record.get("hash_version") == HASH_VERSION:
        content = event_content(
            created_at=body["created_at"], event_type=body["event_type"], outcome=body["outcome"],
            actor_id=body["actor_id"], actor_username=body["actor_username"], actor_roles=body["actor_roles"],
            payload=body["payload"], context={name: body.get(name, "") for name in CONTEXT_FIELDS})
        return link_hash(body["sequence"], record["prev_hash"], body["created_at"], body["event_type"],
                         record.get("db_role", ""), sha256_hex(content))
    return event_hash(body["sequence"], record["prev_hash"], body)
