"""Retention: events older than their class's period are removed, unless on legal hold.

Removal never breaks verification: only events a signed checkpoint already covers may go
(the trigger enforces it), each leaves a tombstone with its sequence and hash, and an
``audit.retention_expired`` event in the chain lists them; a new checkpoint follows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.models import AuditCheckpoint, AuditEvent, AuditTombstone, EventType, LegalHold, Outcome

# Events that hold the trail's own bookkeeping are kept for good.
NEVER_EXPIRE = {EventType.AUDIT_EXPIRED, EventType.LEGAL_HOLD_PLACED, EventType.LEGAL_HOLD_RELEASED,
                EventType.ERASED, EventType.KEY_ROTATED}


def retention_days(event_type: str) -> int:
    return settings.AUDIT_RETENTION_DAYS.get(event_type.split(".")[0], settings.AUDIT_RETENTION_DEFAULT_DAYS)


def legal_hold_place(*, starts_at: datetime, ends_at: datetime, reason: str, placed_by) -> LegalHold:
    """The database function ``audit_legal_hold_place`` (migration 0011) creates the hold and
    appends its event in one transaction; the application role cannot do either alone."""
    from apps.audit.services import attach_events, prepare_events

    payload = {"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(), "reason": reason}
    events, contents = prepare_events([{"event_type": EventType.LEGAL_HOLD_PLACED, "outcome": Outcome.SUCCESS,
                                  "actor": placed_by, "payload": payload}], using="default")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_legal_hold_place(%s::text)", [contents[0]])
        hold_id, *row = cursor.fetchone()
    event = attach_events(events, [tuple(row)], "default")[0]
    event.payload = {**event.payload, "hold_id": hold_id}
    return LegalHold.objects.get(id=hold_id)


def legal_hold_release(*, hold: LegalHold, released_by) -> LegalHold:
    """``audit_legal_hold_release`` (migration 0011) ends the hold and appends its event in
    the same transaction: no hold ends without a chained record."""
    from apps.audit.services import attach_events, prepare_events

    events, contents = prepare_events([{"event_type": EventType.LEGAL_HOLD_RELEASED, "outcome": Outcome.SUCCESS,
                                  "actor": released_by, "payload": {"hold_id": hold.id}}], using="default")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_legal_hold_release(%s, %s::text)", [hold.id, contents[0]])
        released_at, *row = cursor.fetchone()
    attach_events(events, [tuple(row)], "default")
    hold.released_at = released_at or timezone.now()
    return hold


def _past_retention(now: datetime) -> Q:
    """Events older than their class's retention period, as one SQL filter."""
    overridden = sorted(settings.AUDIT_RETENTION_DAYS)
    in_class = {c: Q(event_type=c) | Q(event_type__startswith=f"{c}.") for c in overridden}
    past = Q(created_at__lt=now - timedelta(days=settings.AUDIT_RETENTION_DEFAULT_DAYS))
    for c in overridden:
        past &= ~in_class[c]
    for c in overridden:
        past |= in_class[c] & Q(created_at__lt=now - timedelta(days=retention_days(c)))
    return past


def owner_alias() -> str:
    """Expiry is the owner's: the ``owner`` connection (RAG_DATABASE_OWNER_URL), else this
    process's own, which works only if DATABASE_URL is the owner's."""
    return "owner" if "owner" in settings.DATABASES else "default"


def audit_expire(*, now: datetime | None = None, actor=None, batch_size: int = 5000) -> list[int]:
    """Remove events past retention that a checkpoint covers and no hold protects. Returns their
    sequences. The age test is in SQL and the work goes ``batch_size`` events per transaction
    (each batch with its own ``audit.retention_expired`` event), so years of events never sit
    in memory or in one long transaction.

    Runs on the owner's connection: the application role can neither write tombstones nor
    delete events. The retention event says ``via: audit_expire`` and the database records
    the owner's role in it, which apps.audit.verification requires of every tombstone.
    """
    from apps.audit import signing
    from apps.audit.chain import content_of, sha256_hex
    from apps.audit.checkpoints import audit_checkpoint_create
    from apps.audit.services import CHAIN_LOCK_KEY, audit_record

    using = owner_alias()
    now = now or timezone.now()
    covered = AuditCheckpoint.objects.using(using).order_by("-last_sequence").values_list("last_sequence", flat=True).first() or 0
    holds = list(LegalHold.objects.using(using).filter(released_at__isnull=True))
    removed: list[int] = []
    while True:
        with transaction.atomic(using=using):
            with connections[using].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
            candidates = (AuditEvent.objects.using(using).filter(_past_retention(now), sequence__lte=covered)
                          .exclude(event_type__in=NEVER_EXPIRE))
            for hold in holds:
                candidates = candidates.exclude(Q(created_at__gte=hold.starts_at) & Q(created_at__lte=hold.ends_at))
            expiring = list(candidates.order_by("sequence")[:batch_size])
            if not expiring:
                break
            sequences = [e.sequence for e in expiring]
            record = audit_record(
                event_type=EventType.AUDIT_EXPIRED, outcome=Outcome.SUCCESS, actor=actor, using=using,
                payload={"sequences": sequences, "count": len(sequences), "before": now.isoformat(), "via": "audit_expire",
                         "retention_days": {k: retention_days(k) for k in sorted({e.event_type for e in expiring})}},
            )
            AuditTombstone.objects.using(using).bulk_create([
                AuditTombstone(sequence=e.sequence, hash=e.hash, event_type=e.event_type, created_at=e.created_at,
                               expired_by_sequence=record.sequence, db_role=e.db_role,
                               content_sha256=sha256_hex(content_of(e)) if e.hash_version == 2 else "")
                for e in expiring
            ])
            with connections[using].cursor() as cursor:
                cursor.execute("SET LOCAL rag.audit_expiry = 'on'")
                cursor.execute("DELETE FROM audit_auditevent WHERE sequence = ANY(%s)", [sequences])
                cursor.execute("SET LOCAL rag.audit_expiry = 'off'")
        removed += sequences
        if len(expiring) < batch_size:
            break
    if removed and signing.is_signer():  # elsewhere the signer signs the new head within a minute
        audit_checkpoint_create()
    return removed
