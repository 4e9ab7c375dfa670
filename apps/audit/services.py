"""The only writer of the audit trail."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from apps.audit.chain import GENESIS_HASH, HASH_VERSION, canonical_json, event_content, link_hash, stored_hash
from apps.audit.context import current_context, process_name
from apps.audit.models import AuditEvent, AuditTombstone, EventType
from apps.audit.redaction import redact_payload

# Arbitrary constant key for pg_advisory_xact_lock: one writer at a time extends the chain
# (taken inside audit_append, migration 0007).
CHAIN_LOCK_KEY = 0x52414741  # "RAGA"


def audit_record(
    *,
    event_type: str,
    outcome: str,
    actor: Any = None,
    payload: dict[str, Any] | None = None,
    using: str = "default",
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction if there is one.

    The database function ``audit_append`` takes the writers' advisory lock, so sequence
    numbers are gap-free and every event links to its predecessor across processes.
    """
    return audit_record_many([{"event_type": event_type, "outcome": outcome, "actor": actor, "payload": payload}],
                             using=using)[0]


def audit_record_many(records: list[dict[str, Any]], *, using: str = "default") -> list[AuditEvent]:
    """Append several events in order (``audit_record``'s keyword arguments each) in one
    call of ``audit_append``: a worker storing a batch of documents writes one event per
    document without paying the chain's round trips once per event.

    The client only proposes the content; the database assigns sequence, previous hash and
    role and computes the hash (migration 0007), so the application role cannot choose them.
    """
    events, contents = prepare_events(records, using=using)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT * FROM audit_append(%s::text[])", [contents])
        rows = cursor.fetchall()
    return attach_events(events, rows, using)


def prepare_events(records: list[dict[str, Any]], *, using: str) -> tuple[list[AuditEvent], list[str]]:
    """The unsaved events and the canonical JSON the database hashes, question content
    sealed (apps.audit.content)."""
    from apps.audit.content import seal_question_payload

    actors: dict[Any, tuple[int | None, str, list[str]]] = {}
    key_cache: dict = {}  # data keys found for earlier events of this batch
    base_context = current_context().as_fields()
    process = process_name()
    created_at = timezone.now()
    events, contents = [], []
    for record in records:
        actor = record.get("actor")
        key = getattr(actor, "pk", None)  # None: anonymous or system, described the same way
        if key not in actors:
            actors[key] = _describe_actor(actor)
        actor_id, actor_username, actor_roles = actors[key]
        # Store exactly what we hash: a JSON round trip normalises tuples, dates, decimals.
        clean_payload = redact_payload(json.loads(canonical_json(record.get("payload") or {})))
        if record["event_type"] == EventType.QUESTION_ASKED:
            clean_payload = seal_question_payload(clean_payload, actor_id=actor_id, using=using, cache=key_cache)
        context = {**base_context, "event_id": str(uuid.uuid4()), "process": process}
        fields = {"created_at": created_at, "event_type": record["event_type"], "outcome": record["outcome"],
                  "actor_id": actor_id, "actor_username": actor_username, "actor_roles": actor_roles,
                  "payload": clean_payload}
        contents.append(event_content(**fields, context=context))
        events.append(AuditEvent(**fields, **context, hash_version=HASH_VERSION))
    return events, contents


def attach_events(events: list[AuditEvent], rows: list[tuple], using: str) -> list[AuditEvent]:
    """Fill in what the database assigned (audit_append's rows)."""
    for event, (pk, sequence, prev_hash, hash_value, db_role) in zip(events, rows, strict=True):
        event.pk, event.sequence, event.prev_hash, event.hash, event.db_role = pk, sequence, prev_hash, hash_value, db_role
        event.event_id = uuid.UUID(event.event_id)
        event._state.adding, event._state.db = False, using
    return events


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


_EVENT_FIELDS = ("sequence", "created_at", "event_type", "outcome", "actor_id", "actor_username", "actor_roles",
                 "payload", "event_id", "session_hash", "ip_address", "user_agent", "request_id", "process", "db_role",
                 "hash_version", "prev_hash", "hash")


# Clocks of the writing processes may disagree by up to audit_append's bound (5 minutes
# each way), so neighbouring events' times may be out of order by up to twice that.
NEIGHBOUR_SKEW = timedelta(minutes=10)


def format2_start(*, using: str = "default") -> int:
    """The first place of the chain written by audit_append (format 2), as the database shows
    it now: the lowest format-2 event or tombstone with a content hash (0: none yet). The
    signer signs it into every head (``format2_from``) and carries it forward, so the owner
    cannot later move it by hiding format-2 events behind hash-less tombstones."""
    first_event = AuditEvent.objects.using(using).filter(hash_version=HASH_VERSION).order_by("sequence").values_list(
        "sequence", flat=True).first()
    first_tomb = AuditTombstone.objects.using(using).exclude(content_sha256="").order_by("sequence").values_list(
        "sequence", flat=True).first()
    found = [s for s in (first_event, first_tomb) if s]
    return min(found) if found else 0


def audit_verify_chain(*, after_sequence: int = 0, after_hash: str = GENESIS_HASH, through: int | None = None,
                       visit: Callable[[int, str], None] | None = None, using: str = "default",
                       format2_from: int | None = None) -> ChainReport:
    """Recompute every hash in order after ``after_sequence`` (whose hash the caller
    vouches for: 0 and the genesis hash, or a signed head); name the first event that does
    not fit. One pass, no lock: rows up to the head are committed and never change, so the
    writers are not held up. ``visit(sequence, hash)`` is called for every place in the
    chain (events and tombstones), for checking signed heads in the same pass.

    Events removed after their retention period leave a tombstone; a format-2 tombstone's
    hash is recomputed from its sequence, time, type, role and content hash, so it cannot be
    invented. A tombstone without a content hash (format 1) is accepted only before
    ``format2_from`` (a signed head's, else ``format2_start()``), and every tombstone's time
    must lie between its neighbours' (within NEIGHBOUR_SKEW). Whether a tombstone was allowed
    (retention, holds, types kept for good) is apps.audit.verification's question.
    """
    if format2_from is None:
        format2_from = format2_start(using=using)
    expected_prev = after_hash
    expected_sequence = after_sequence + 1
    checked = 0
    tombstone_rows = AuditTombstone.objects.using(using).filter(sequence__gt=after_sequence)
    events = AuditEvent.objects.using(using).filter(sequence__gt=after_sequence)
    if through is not None:
        tombstone_rows, events = tombstone_rows.filter(sequence__lte=through), events.filter(sequence__lte=through)
    tombstones = {t.sequence: t for t in tombstone_rows}

    def bad(sequence: int, problem: str) -> ChainReport:
        return ChainReport(False, checked, sequence, problem, expected_sequence - 1, expected_prev, len(tombstones))

    previous_time = None  # the time of the place before, for the tombstone neighbour test
    pending_tomb = None  # the last tombstone passed, until the next event's time is seen

    def pass_tombstone() -> str | None:
        nonlocal expected_prev, expected_sequence, previous_time, pending_tomb
        tomb = tombstones[expected_sequence]
        if not tomb.content_sha256 and format2_from and tomb.sequence >= format2_from:
            return (f"tombstone without a content hash after format 2 began at #{format2_from} "
                    "(its time and type cannot be checked: forged)")
        if previous_time is not None and tomb.created_at < previous_time - NEIGHBOUR_SKEW:
            return "tombstone time is earlier than the event before it (forged)"
        previous_time, pending_tomb = tomb.created_at, tomb
        if tomb.content_sha256 and link_hash(tomb.sequence, expected_prev, tomb.created_at.isoformat(timespec="microseconds"),
                                             tomb.event_type, tomb.db_role, tomb.content_sha256) != tomb.hash:
            return "tombstone does not fit the chain (forged)"
        expected_prev = tomb.hash
        if visit:
            visit(expected_sequence, expected_prev)
        expected_sequence += 1
        return None

    for row in events.order_by("sequence").values_list(*_EVENT_FIELDS).iterator(chunk_size=5000):
        event = SimpleNamespace(**dict(zip(_EVENT_FIELDS, row)))
        while expected_sequence in tombstones and event.sequence != expected_sequence:
            if problem := pass_tombstone():
                return bad(expected_sequence, problem)
        if pending_tomb is not None and event.created_at < pending_tomb.created_at - NEIGHBOUR_SKEW:
            return bad(pending_tomb.sequence, "tombstone time is later than the event after it (forged)")
        pending_tomb, previous_time = None, event.created_at
        if event.sequence != expected_sequence:
            problem = "reordered event" if event.sequence < expected_sequence else "missing event (deleted)"
            return bad(expected_sequence, problem)
        if event.prev_hash != expected_prev:
            return bad(event.sequence, "link to previous event broken (deleted or reordered)")
        if stored_hash(event) != event.hash:
            return bad(event.sequence, "content does not match its hash (edited)")
        expected_prev = event.hash
        if visit:
            visit(event.sequence, event.hash)
        expected_sequence += 1
        checked += 1
    while expected_sequence in tombstones:  # everything at the end expired
        if problem := pass_tombstone():
            return bad(expected_sequence, problem)
    return ChainReport(True, checked, head_sequence=expected_sequence - 1, head_hash=expected_prev,
                       tombstones=len(tombstones))
