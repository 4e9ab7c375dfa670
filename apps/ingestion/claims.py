"""Who holds a document, and how a hold ends: claims, leases, failures, release.

    queued --parse (queue "parse", sandboxed child)--> parsed --embed (queue "embed")--> indexed
       \\__ ParseError: failed (the file's fault, not retried)
       \\__ limit hit / crash / worker lost: retried with backoff; after INGEST_MAX_ATTEMPTS
           parse attempts: failed + quarantined, with the reason

A claim is a conditional UPDATE that sets ``claim_task_id``, the holding process
(apps.ingestion.holders) and a lease. The same Celery task id (a redelivery after a worker
died, or a retry) takes its own claim back at once; another task takes it over at once when
the holding process is known to be dead (killed on this host), else waits for the lease to
expire, and the housekeeping task (celery beat, apps.ingestion.housekeeping) hands expired
claims to a new task. A task that gives up fails its own document and releases the others
it claimed for its batch.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.models import Chunk, Document
from apps.ingestion import queue
from apps.ingestion.holders import current_holder, holder_is_dead

logger = logging.getLogger(__name__)

S = Document.Status
DONE = "done"  # nothing (more) to do: finished, failed or deleted
BUSY = "busy"  # another live task holds the claim: try again later


class TransientIngestError(Exception):
    """Worth another attempt (limit hit under load, crash, database hiccup)."""


def claim(document_id: int, *, free: list[str], held: str, task_id: str, lease_seconds: float, count_attempt: bool) -> bool:
    now = timezone.now()
    mine_or_expired = Q(status=held) & (Q(claim_task_id=task_id) | takeable(document_id, held, now))
    updates = {"status": held, "claim_task_id": task_id, "claim_holder": current_holder(),
               "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    if count_attempt:
        updates["attempts"] = F("attempts") + 1
    return bool(Document.objects.filter(Q(id=document_id) & (Q(status__in=free) | mine_or_expired)).update(**updates))


def takeable(document_id: int, held: str, now) -> Q:
    """What lets another task take ``document_id``'s ``held`` claim: its lease has run out,
    or (the same holder still, no live task took it meanwhile) its process is known dead."""
    condition = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    holder = Document.objects.filter(id=document_id, status=held).values_list("claim_holder", flat=True).first()
    if holder and holder_is_dead(holder):
        condition |= Q(claim_holder=holder)
    return condition


def busy_or_done(document_id: int, held: str) -> str:
    return BUSY if Document.objects.filter(id=document_id, status=held).exists() else DONE


def documents_release(*, task_id: str, except_id: int | None = None) -> int:
    """Give back what ``task_id`` still holds (the other documents of its batch, when it
    gives up): parse claims go back to the queue, embed claims back to "parsed" with their
    drafts, each with a task of its own. Returns how many were released."""
    released: list[tuple[int, str]] = []
    with transaction.atomic():
        held = Document.objects.select_for_update(skip_locked=True).filter(
            claim_task_id=task_id, status__in=[S.PROCESSING, S.EMBEDDING])
        if except_id is not None:
            held = held.exclude(id=except_id)
        for doc_id, status in held.values_list("id", "status"):
            released.append((doc_id, S.QUEUED if status == S.PROCESSING else S.PARSED))
        for back_to in (S.QUEUED, S.PARSED):
            ids = [i for i, s in released if s == back_to]
            if ids:
                Document.objects.filter(id__in=ids, claim_task_id=task_id).update(
                    status=back_to, claim_task_id="", lease_expires_at=None)
        for doc_id, back_to in released:
            send = queue.enqueue_parse if back_to == S.QUEUED else queue.enqueue_embed
            transaction.on_commit(lambda d=doc_id, send=send: send(document_id=d))
    if released:
        logger.warning("task %s gave up; released %s other document(s) of its batch", task_id, len(released))
    return len(released)


def document_give_up(*, document_id: int, task_id: str, reason: str) -> Document | None:
    """A task out of attempts: its own document fails with ``reason``, the rest of its
    batch is released (their own tasks will try them)."""
    document = document_mark_failed(document_id=document_id, reason=reason)
    documents_release(task_id=task_id, except_id=document_id)
    return document


def document_mark_failed(*, document_id: int, reason: str, code: str = "error", quarantine: bool = False,
                         extra: dict | None = None) -> Document | None:
    """Fail the document with ``reason`` (what an admin reads) and audit it; ``extra`` is added
    to the event's payload."""
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(id=document_id).first()
        if document is None:
            return None
        Chunk.objects.filter(document=document).delete()
        document.status = S.FAILED
        document.failure_reason = reason
        document.failure_code = code
        document.chunk_count = 0
        document.draft_chunks = None
        document.claim_task_id = ""
        document.lease_expires_at = None
        if quarantine:
            document.quarantined_at = timezone.now()
        document.save()
        payload = {
            "collection_id": document.collection_id, "document_id": document.id, "sha256": document.sha256,
            "reason": reason, "code": code, "attempt": document.attempts, **(extra or {}),
        }
        audit_record(event_type=EventType.DOCUMENT_FAILED, outcome=Outcome.FAILED, actor=document.uploaded_by, payload=payload)
        if quarantine:
            audit_record(event_type=EventType.DOCUMENT_QUARANTINED, outcome=Outcome.FAILED, actor=document.uploaded_by, payload=payload)
    return document


def document_quarantine(*, document_id: int, reason: str, code: str = "quarantined") -> Document | None:
    return document_mark_failed(document_id=document_id, reason=reason, code=code, quarantine=True)


def transient_failure(document_id: int, reason: str, *, code: str, primary: bool = True) -> str:
    """A parse attempt that may succeed next time: quarantined once out of attempts; the
    task's own document raises TransientIngestError (the task retries), another document
    of its batch goes back to the queue with a task of its own."""
    attempts = Document.objects.filter(id=document_id).values_list("attempts", flat=True).first()
    if attempts is None:
        return DONE
    if attempts >= settings.INGEST_MAX_ATTEMPTS:
        document_quarantine(document_id=document_id, reason=f"{reason} Failed {attempts} times; set aside.", code=code)
        return DONE
    message = f"Attempt {attempts} failed, will retry: {reason}"
    if not primary:
        with transaction.atomic():
            if Document.objects.filter(id=document_id, status=S.PROCESSING).update(
                status=S.QUEUED, claim_task_id="", lease_expires_at=None, failure_reason=message, failure_code=code
            ):
                transaction.on_commit(lambda: queue.enqueue_parse(document_id=document_id))
        return DONE
    Document.objects.filter(id=document_id, status=S.PROCESSING).update(failure_reason=message, failure_code=code)
    raise TransientIngestError(reason)
