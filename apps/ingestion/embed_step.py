"""The embed step (queue "embed"): batches of chunks from several parsed documents are
encoded in one call each (the model is faster on full batches), then each document's chunks
(and a replaced version's) swap in, with its own audit event. Claims: apps.ingestion.claims.

Batching across documents is done by claiming: the task holding the model turn takes the
parsed documents waiting (``SELECT ... FOR UPDATE SKIP LOCKED``, each claim leased), not
by buffering broker messages: celery-batches was considered, but it buffers messages in the
worker's main process and needs a prefetch of at least a batch (ours is 1, so that no task
waits behind a slow one), while the drafts to batch are already in the database, where
claims and leases make a crash mid-batch lose nothing."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import transaction
from django.db.models import F, Func, IntegerField, Q, Sum
from django.utils import timezone

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record_many
from apps.corpus.models import Chunk, Document
from apps.ingestion import queue
from apps.ingestion.claims import BUSY, DONE, busy_or_done, claim, documents_release, takeable
from apps.ingestion.holders import current_holder
from apps.ingestion.turns import model_turn

logger = logging.getLogger(__name__)

S = Document.Status


def documents_embed(*, document_id: int, task_id: str) -> str:
    """Embed parsed documents in batches across documents, starting with ``document_id``,
    batch after batch while any are parsed (for at most INGEST_EMBED_DRAIN_SECONDS).

    One process on the host encodes at a time (apps.ingestion.turns). A task that finds the
    turn taken returns BUSY at once: the holder takes its document in its next batch (and the
    recheck the task queues finds it indexed), so that pool process goes back to parsing
    instead of queueing for the model; one process encodes while the others parse. Before
    each batch the holder waits up to INGEST_EMBED_WAIT_SECONDS for more drafts, but only
    while documents are being parsed and fewer than INGEST_EMBED_BATCH_CHUNKS are waiting: a
    lone upload is not held back. Each batch is claimed (leases: apps.ingestion.claims) under
    the turn, and stored after the turn is handed on (documents_store_chunks)."""
    from apps.ingestion.embedding import embed_passages

    if not _to_embed(document_id, task_id):
        return busy_or_done(document_id, S.EMBEDDING)
    deadline = time.monotonic() + settings.INGEST_EMBED_DRAIN_SECONDS
    first: int | None = document_id
    retried = False
    while True:
        with model_turn(wait=False) as turn:
            if turn is None:  # another process encodes, and takes what is parsed
                documents_release(task_id=task_id)  # a redelivery's claims: to the holder
                return BUSY if first is not None else DONE
            waited = _wait_for_more()
            batch = _claim_embed_batch(task_id, first=first)
            if batch:
                drafts_by_id = dict(Document.objects.filter(id__in=batch).values_list("id", "draft_chunks"))
                jobs = [(doc_id, drafts_by_id.get(doc_id) or []) for doc_id in batch]
                started = time.monotonic()
                vectors = embed_passages([d["text"] for _, drafts in jobs for d in drafts])
                seconds = time.monotonic() - started
        if not batch:
            # Drafts parsed just before the turn was handed back: their tasks found it taken.
            if retried or time.monotonic() >= deadline or not _parsed().exists():
                return busy_or_done(first, S.EMBEDDING) if first is not None else DONE
            retried = True
            continue
        retried = False
        logger.info("embedded %s chunks of %s documents in %.2f s (waited %.2f s for more)",
                    len(vectors), len(batch), seconds, waited)
        _store(task_id, jobs, vectors, seconds)
        first = None
        if time.monotonic() >= deadline:
            break
    # Parsed files left when the time was up: make sure a task will take them.
    left = _parsed().order_by("id").values_list("id", flat=True).first()
    if left is not None:
        transaction.on_commit(lambda: queue.enqueue_embed(document_id=left))
    return DONE


def _store(task_id: str, jobs: list[tuple[int, list[dict]]], vectors: list, seconds: float) -> None:
    total = max(1, len(vectors))
    offset = 0
    stored = []
    for doc_id, drafts in jobs:
        mine = vectors[offset: offset + len(drafts)]
        offset += len(drafts)
        stored.append((doc_id, drafts, mine, seconds * len(drafts) / total))
    documents_store_chunks(task_id=task_id, batch=stored)


def _to_embed(document_id: int, task_id: str) -> bool:
    """Is there anything for this task: its document parsed (or its claim expired, or its
    holder dead), or documents its first delivery claimed (a redelivery after the worker died)?"""
    taken_over = takeable(document_id, S.EMBEDDING, timezone.now())
    return Document.objects.filter(
        Q(id=document_id, status=S.PARSED) | (Q(id=document_id, status=S.EMBEDDING) & taken_over)
        | Q(status=S.EMBEDDING, claim_task_id=task_id)
    ).exists()


def _parsed():
    return Document.objects.filter(status=S.PARSED, draft_chunks__isnull=False)


def _drafts_count():
    return Func(F("draft_chunks"), function="jsonb_array_length", output_field=IntegerField())


def _wait_for_more() -> float:
    """Wait (polling) up to INGEST_EMBED_WAIT_SECONDS while fewer than a full batch of drafts
    are waiting and some document is being parsed (a live parse claim); the seconds waited."""
    limit = settings.INGEST_EMBED_WAIT_SECONDS
    started = time.monotonic()
    while time.monotonic() - started < limit:
        ready = _parsed().aggregate(n=Sum(_drafts_count()))["n"] or 0
        if ready >= settings.INGEST_EMBED_BATCH_CHUNKS:
            break
        if not Document.objects.filter(status=S.PROCESSING, lease_expires_at__gt=timezone.now()).exists():
            break
        time.sleep(settings.INGEST_EMBED_POLL_SECONDS)
    return time.monotonic() - started


def _claim_embed_batch(task_id: str, *, first: int | None) -> list[int]:
    """Claim ``first`` (if still this task's to embed) and other parsed documents, up to
    INGEST_EMBED_BATCH_CHUNKS chunks together, and take back what this task claimed before
    a redelivery; [] if there is nothing."""
    lease = settings.INGEST_EMBED_LEASE_SECONDS
    batch: list[int] = []
    used = 0
    if first is not None and claim(first, free=[S.PARSED], held=S.EMBEDDING, task_id=task_id,
                                   lease_seconds=lease, count_attempt=False):
        batch = [first]
        used = Document.objects.filter(id=first, draft_chunks__isnull=False).values_list(_drafts_count(), flat=True).first() or 0
    with transaction.atomic():
        budget = settings.INGEST_EMBED_BATCH_CHUNKS
        candidates = (
            Document.objects.select_for_update(skip_locked=True)
            .filter(Q(status=S.PARSED) | Q(status=S.EMBEDDING, claim_task_id=task_id), draft_chunks__isnull=False)
            .exclude(id__in=batch).order_by("id").values_list("id", _drafts_count())[:budget]
        )
        others = []
        for other_id, count in candidates:
            if used >= budget:
                break
            if used + count > budget and used:
                continue
            others.append(other_id)
            used += count
        Document.objects.filter(id__in=others).update(
            status=S.EMBEDDING, claim_task_id=task_id, claim_holder=current_holder(),
            lease_expires_at=timezone.now() + timedelta(seconds=lease),
        )
    return batch + others


def documents_store_chunks(*, task_id: str, batch: list[tuple[int, list[dict], list, float]]) -> None:
    """One transaction for the batch: each document's chunks (and a replaced version's) swap
    at once, with its audit event; a document deleted or taken over meanwhile is skipped.
    ``batch``: (document id, drafts, vectors, embed seconds) per document. The statements
    are per batch, not per document (chunks, full-text vectors, statuses, replaced versions,
    audit events). Of several versions of one title in a batch only the latest is indexed."""
    with transaction.atomic():
        locked = {d.id: d for d in Document.objects.select_for_update(of=("self",)).select_related("uploaded_by", "collection")
                  .filter(id__in=[b[0] for b in batch]).order_by("id")}
        mine = [b for b in batch if (d := locked.get(b[0])) is not None
                and d.status == S.EMBEDDING and d.claim_task_id == task_id]  # others: deleted or taken over
        if not mine:
            return
        ids = {b[0] for b in mine}
        # A later version indexed first, or in this batch: this one must not come back to search.
        overtaken = set(Document.objects.filter(replaces_id__in=ids, status=S.INDEXED).values_list("replaces_id", flat=True))
        overtaken |= {locked[i].replaces_id for i in ids} & ids
        Chunk.objects.filter(document_id__in=ids).delete()
        kept = [b for b in mine if b[0] not in overtaken]
        replaced = _earlier_versions({locked[b[0]].replaces_id for b in mine} - ids - {None})
        _supersede(replaced | (overtaken & ids))
        chunks, indexed, events = [], [], []
        now = timezone.now()
        for document_id, drafts, vectors, embed_seconds in kept:
            document = locked[document_id]
            chunks += [
                Chunk(
                    document=document, collection_id=document.collection_id, ordinal=d["ordinal"], text=d["text"],
                    page_number=d["page_number"], section_title=d["section_title"][:500],
                    metadata=d.get("metadata") or {}, embedding=vector,
                )
                for d, vector in zip(drafts, vectors, strict=True)
            ]
            pages = [d["page_number"] for d in drafts if d.get("page_number") is not None]
            document.status = S.INDEXED
            document.chunk_count = len(drafts)
            document.page_count = max(pages) if pages else None
            document.indexed_at = now
            document.failure_reason = document.failure_code = document.claim_task_id = ""
            document.lease_expires_at = None
            document.draft_chunks = None
            document.embed_seconds = embed_seconds
            document.updated_at = now  # bulk_update does not apply auto_now
            indexed.append(document)
            swapped = document.replaces_id if document.replaces_id in replaced | ids else None
            events.append({
                "event_type": EventType.DOCUMENT_INDEXED, "outcome": Outcome.SUCCESS, "actor": document.uploaded_by,
                "payload": {
                    "collection_id": document.collection_id, "document_id": document.id, "sha256": document.sha256,
                    "chunks": document.chunk_count, "pages": document.page_count, "attempt": document.attempts,
                    "version": document.version, "replaced_document_id": swapped,
                    # Counts by type, never values; None: not screened (RAG_PII_DETECTION=0).
                    "personal_data": document.pii_summary, "pii_policy": document.collection.pii_policy,
                },
            })
        if not indexed:
            return
        Chunk.objects.bulk_create(chunks, batch_size=500)
        # One pass over the new chunks for the weighted full-text vectors.
        Chunk.objects.filter(document_id__in=[d.id for d in indexed]).update(
            search_vector=SearchVector("section_title", weight="A", config="english")
            + SearchVector("text", weight="B", config="english")
        )
        Document.objects.bulk_update(indexed, [
            "status", "chunk_count", "page_count", "indexed_at", "failure_reason", "failure_code",
            "claim_task_id", "lease_expires_at", "draft_chunks", "embed_seconds", "updated_at",
        ])
        audit_record_many(events)


def _earlier_versions(start: set[int]) -> set[int]:
    """``start`` and the versions before them that are not superseded yet (a failed version
    in between does not stop the walk; a superseded one does: what precedes it left search
    with it), locked; one query per step back."""
    found: set[int] = set()
    seen: set[int] = set()
    frontier = start
    while frontier:
        seen |= frontier
        rows = list(Document.objects.select_for_update().filter(id__in=frontier).order_by("id")
                    .values_list("id", "replaces_id", "status"))
        live = [(i, r) for i, r, status in rows if status != S.SUPERSEDED]
        found |= {i for i, _ in live}
        frontier = {r for _, r in live if r is not None} - seen
    return found


def _supersede(document_ids: set[int]) -> None:
    """Replaced versions leave search: their chunks go, in one statement each."""
    if document_ids:
        Chunk.objects.filter(document_id__in=document_ids).delete()
        Document.objects.filter(id__in=document_ids).update(
            status=S.SUPERSEDED, chunk_count=0, draft_chunks=None, claim_task_id="", lease_expires_at=None,
            updated_at=timezone.now(),
        )
