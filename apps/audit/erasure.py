"""Crypto-shredding: destroy data keys with a chained ``audit.erased`` event, refuse under a hold.

``erase_keys`` is the audit app's half of an erasure (the owning apps remove their own
rows: apps.answering.erasure). The database function ``audit_erase`` (migration 0009) deletes
the key rows and appends the event in one transaction, and itself refuses when an active
legal hold covers an event sealed with one of the keys; this module checks the same first,
to name the hold in a readable message. After commit the erasure is appended to the ledger
outside the database (apps.audit.keys), which ``apply_ledger`` re-applies to a restored backup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.dispatch import Signal

from apps.audit import keys
from apps.audit.models import AuditEvent, DataKey, EventType, LegalHold, Outcome

Subject = tuple[str, int]


class ErasureRefused(Exception):
    """An erasure that may not happen (legal hold, no reason): nothing was destroyed."""


@dataclass(frozen=True)
class Erasure:
    event: AuditEvent
    key_ids: list[int]
    subjects: list[Subject] = field(default_factory=list)


def key_ids_of(subjects: list[Subject], *, using: str = "default") -> list[int]:
    from django.db.models import Q

    if not subjects:
        return []
    query = Q()
    for scope, subject in subjects:
        query |= Q(scope=scope, subject_id=subject)
    return sorted(DataKey.objects.using(using).filter(query).values_list("id", flat=True))


def holds_covering(key_ids: list[int], *, using: str = "default") -> list[LegalHold]:
    """Active legal holds whose period holds an event sealed with one of ``key_ids``."""
    if not key_ids:
        return []
    from django.db.models import Exists, OuterRef, Q

    sealed = Q()
    for key_id in key_ids:
        sealed |= Q(payload__enc_keys__contains=[key_id])
    covered = AuditEvent.objects.using(using).filter(
        sealed, created_at__gte=OuterRef("starts_at"), created_at__lte=OuterRef("ends_at"))
    return list(LegalHold.objects.using(using).filter(released_at__isnull=True).filter(Exists(covered)).order_by("id"))


def hold_message(holds: list[LegalHold]) -> str:
    named = "; ".join(f"#{h.id} “{h.reason}” ({h.starts_at:%Y-%m-%d} to {h.ends_at:%Y-%m-%d})" for h in holds)
    return (f"Refused: legal hold {named} covers this content. Nothing was erased; "
            "erase it after the hold is released (manage.py audit_legal_hold).")


def erase_keys(*, subjects: list[Subject], reason: str, actor: Any, what: dict[str, Any],
               using: str = "default") -> Erasure:
    """Destroy the data keys of ``subjects`` and append ``audit.erased`` (who, what, why,
    when) in one transaction; ErasureRefused, with nothing destroyed, under a legal hold.
    ``what`` describes the subject for the record (e.g. {"username": ...})."""
    from apps.audit.services import attach_events, prepare_events

    reason = (reason or "").strip()
    if not reason:
        raise ErasureRefused("An erasure needs a reason (it is recorded in the signed audit trail).")
    with transaction.atomic(using=using):
        key_ids = key_ids_of(subjects, using=using)
        if holds := holds_covering(key_ids, using=using):
            raise ErasureRefused(hold_message(holds))
        owners = [[pk, scope, subject] for pk, scope, subject in DataKey.objects.using(using).filter(id__in=key_ids)
                  .order_by("id").values_list("id", "scope", "subject_id")]
        payload = {**what, "subjects": [[scope, subject] for scope, subject in subjects], "key_ids": key_ids,
                   "keys": owners, "reason": reason[:500]}
        events, contents = prepare_events([{"event_type": EventType.ERASED, "outcome": Outcome.SUCCESS, "actor": actor,
                                      "payload": payload}], using=using)
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT * FROM audit_erase(%s::bigint[], %s::text)", [key_ids, contents[0]])
            rows = cursor.fetchall()
        event = attach_events(events, rows, using)[0]
        entry = _entry(event, owners)
        if key_ids:
            transaction.on_commit(lambda: keys.ledger_append(entry), using=using)
    return Erasure(event, key_ids, list(subjects))


def _entry(event: AuditEvent, owners: list | None = None) -> dict[str, Any]:
    """The ledger's record of an ``audit.erased`` event: what a restore must erase again
    (the keys with their owners, the subjects, the documents by id and sha256)."""
    p = event.payload
    return {"key_ids": [int(i) for i in p.get("key_ids", [])], "keys": owners if owners is not None else p.get("keys", []),
            "subjects": p.get("subjects", []), "documents": p.get("documents", []), "sequence": event.sequence,
            "hash": event.hash, "erased_at": event.created_at.isoformat(), "erased_by": event.actor_username,
            "reason": p.get("reason", "")}


# Sent by ``apply_ledger`` with the ledger's authenticated ``entries``: the apps that own the
# erased content (apps.answering.erasure) delete what a restored backup brought back and
# return {what: how many}.
erasures_reapplied = Signal()


def apply_ledger(*, using: str = "default") -> dict[str, Any]:
    """Make the database agree with the ledger, both ways: keys the ledger lists that exist
    again (a restored backup) are destroyed again, each with an ``audit.erased`` event that
    says so, and the history rows and documents the erasures removed are removed again
    (``erasures_reapplied``); erasures recorded in the database but missing from the ledger
    (the process stopped between commit and append) are appended to it. Only authenticated
    ledger lines count (apps.audit.ledger); the others are returned in ``skipped``."""
    from apps.audit import ledger

    read = ledger.read()
    erased = ledger.erased_keys()
    back = sorted(pk for pk, scope, subject in DataKey.objects.using(using).filter(id__in=list(erased))
                  .values_list("id", "scope", "subject_id") if keys._erased(pk, scope, subject, erased))
    if back:
        _reerase(back, read.entries, using=using)
    result: dict[str, Any] = {"keys_destroyed_again": len(back)}
    for _receiver, counts in erasures_reapplied.send(sender=AuditEvent, entries=read.entries, using=using):
        for name, count in (counts or {}).items():
            result[name] = result.get(name, 0) + count
    listed = read.key_ids()
    added = 0
    for event in AuditEvent.objects.using(using).filter(event_type=EventType.ERASED).order_by("sequence"):
        ids = [int(i) for i in event.payload.get("key_ids", [])]
        if ids and not set(ids) <= listed:
            keys.ledger_append(_entry(event))
            listed |= set(ids)
            added += 1
    return {**result, "ledger_entries_added": added, "skipped": read.problems}


def _reerase(key_ids: list[int], entries: list[dict], *, using: str) -> None:
    from apps.audit.services import attach_events, prepare_events

    entries = [e for e in entries if set(e.get("key_ids", [])) & set(key_ids)]
    payload = {"reapplied_from_ledger": True, "key_ids": key_ids, "subjects": [],
               "reason": "re-applied after a restore: " + "; ".join(sorted({e.get("reason", "") for e in entries})),
               "original_erasures": [{"sequence": e.get("sequence"), "hash": e.get("hash")} for e in entries]}
    with transaction.atomic(using=using):
        events, contents = prepare_events([{"event_type": EventType.ERASED, "outcome": Outcome.SUCCESS, "actor": None,
                                      "payload": payload}], using=using)
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT * FROM audit_erase(%s::bigint[], %s::text)", [key_ids, contents[0]])
            attach_events(events, cursor.fetchall(), using)
