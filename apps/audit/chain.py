"""Pure functions of the hash chain, shared by writing and verifying."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


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
) -> dict[str, Any]:
    return {
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
