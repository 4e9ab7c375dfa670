"""The only writer of the audit trail."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.chain import GENESIS_HASH, body_of, canonical_json, event_body, event_hash
from apps.audit.context import current_context, process_name
from apps.audit.models import AuditEvent, AuditTombstone

# Arbitrary constant key for pg_advisory_xact_lock: one writer at a time extends the chain.
_CHAIN_LOCK_KEY = 0x52414741  # "RAGA"


def audit_record(
    *,
    event_type: str,
    outcome: str,
    actor: Any = None,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction if there is one.

    The advisory lock serialises writers across processes (web threads and workers), so
    sequence numbers are gap-free and every event links to its predecessor.
    """
    return audit_record_many([{"event_type": event_type, "outcome": outcome, "actor": actor, "payload": payload}])[0]


def audit_record_many(records: list[dict[str, Any]]) -> list[AuditEvent]:
    """Append several events in order (``audit_record``'s keyword arguments each), under one
    lock and in one INSERT: a worker storing a batch of documents writes one event per
    document without paying the chain's round trips once per event."""
    actors: dict[Any, tuple[int | None, str, list[str]]] = {}
    prepared = []
    for record in records:
        actor = record.get("actor")
        key = getattr(actor, "pk", None)  # None: anonymous or system, described the same way
        if key not in actors:
            actors[key] = _describe_actor(actor)
        # Store exactly what we hash: a JSON round trip normalises tuples, dates, decimals.
        prepared.append((record, json.loads(canonical_json(record.get("payload") or {})), actors[key]))
    base_context = current_context().as_fields()
    process = process_name()
    events = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        last = AuditEvent.objects.order_by("-sequence").values("sequence", "hash").first()
        sequence = last["sequence"] if last else 0
        prev_hash = last["hash"] if last else GENESIS_HASH
        created_at = timezone.now()
        for record, clean_payload, (actor_id, actor_username, actor_roles) in prepared:
            sequence += 1
            context = {**base_context, "event_id": str(uuid.uuid4()), "process": process}
            fields = {
                "sequence": sequence, "created_at": created_at, "event_type": record["event_type"],
                "outcome": record["outcome"], "actor_id": actor_id, "actor_username": actor_username,
                "actor_roles": actor_roles, "payload": clean_payload,
            }
            event_hash_value = event_hash(sequence, prev_hash, event_body(**fields, context=context))
            events.append(AuditEvent(**fields, **context, prev_hash=prev_hash, hash=event_hash_value))
            prev_hash = event_hash_value
        return AuditEvent.objects.bulk_create(events)


def _describe_actor(actor: Any) -> tuple[int | None, str, list[str]]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, "", []
    roles = sorted(actor.groups.values_list("name", flat=True))
    if actor.is_superuser:
        roles.append("superuser")
    return actor.pk, actor.get_username(), roles


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events_checked: int
    first_bad_sequence: int | None = None
    problem: str = ""
    head_sequence: int = 0
    head_hash: str = GENESIS_HASH
    tombstones: int = 0


def audit_verify_chain() -> ChainReport:
    """Recompute every hash in order; name the first event that does not fit.

    Events removed after their retention period leave a tombstone (sequence and hash), so
    the chain still links across them; the tombstones themselves are checked against the
    ``audit.retention_expired`` events that list them (apps.audit.verification).
    """
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    tombstones = dict(AuditTombstone.objects.values_list("sequence", "hash"))
    rows = AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000)
    for event in rows:
        while expected_sequence in tombstones and event.sequence != expected_sequence:
            expected_prev = tombstones[expected_sequence]
            expected_sequence += 1
        if event.sequence != expected_sequence:
            problem = "reordered event" if event.sequence < expected_sequence else "missing event (deleted)"
            return ChainReport(False, checked, expected_sequence, problem, expected_sequence - 1, expected_prev)
        if event.prev_hash != expected_prev:
            return ChainReport(False, checked, event.sequence, "link to previous event broken (deleted or reordered)",
                               expected_sequence - 1, expected_prev)
        if event_hash(event.sequence, event.prev_hash, body_of(event)) != event.hash:
            return ChainReport(False, checked, event.sequence, "content does not match its hash (edited)",
                               expected_sequence - 1, expected_prev)
        expected_prev = event.hash
        expected_sequence += 1
        checked += 1
    while expected_sequence in tombstones:  # everything at the end expired
        expected_prev = tombstones[expected_sequence]
        expected_sequence += 1
    return ChainReport(True, checked, head_sequence=expected_sequence - 1, head_hash=expected_prev,
                       tombstones=len(tombstones))
