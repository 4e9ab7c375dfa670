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
