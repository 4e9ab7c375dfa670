"""The embed step (queue "embed"): one batch of chunks from several parsed documents is
encoded in one call (the model is faster on full batches), then each document's chunks
(and a replaced version's) swap in one transaction. Claims: apps.ingestion.claims."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import transaction
from django.db.models import F, Func, IntegerField, Q
from django.utils import timezone

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record_many
from apps.corpus.models import Chunk, Document
from apps.ingestion import queue
from apps.ingestion.claims import DONE, busy_or_done, claim
from apps.ingestion.turns import model_turn

logger = logging.getLogger(__name__)

S = Document.Status


def documents_embed(*, document_id: int, task_id: str) -> str:
    """Embed this document's drafts together with other parsed documents' (one batch).

    The batch is claimed once this process has its turn on the model (apps.ingestion.turns),
    so it takes whatever was parsed while another process encoded, and stored after the turn
    is handed on, so the next batch encodes while this one is written."""
    from apps.ingestion.embedding import embed_passages

    with model_turn() as waited:
        batch = _claim_embed_batch(document_id, task_id)
        if not batch:
            return busy_or_done(document_id, S.EMBEDDING)
        drafts_by_id = dict(Document.objects.filter(id__in=batch).values_list("id", "draft_chunks"))
        jobs = [(doc_id, drafts_by_id.get(doc_id) or []) for doc_id in batch]
        started = time.monotonic()
        vectors = embed_passages([d["text"] for _, drafts in jobs for d in drafts])
        seconds = time.monotonic() - started
    logger.info("embedded %s chunks of %s documents in %.2f s (waited %.2f s for the model)",
                len(vectors), len(batch), seconds, waited)
    total = max(1, len(vectors))
    offset = 0
    stored = []
    for doc_id, drafts in jobs:
        mine = vectors[offset: offset + len(drafts)]
        offset += len(drafts)
        stored.append((doc_id, drafts, mine, seconds * len(drafts) / total))
    documents_store_chunks(task_id=task_id, batch=stored)
    # Parsed files this batch had no room for: make sure a task will take them.
    left = Document.objects.filter(status=S.PARSED).exclude(id__in=batch).order_by("id").values_list("id", flat=True).first()
    if left is not None:
        transaction.on_commit(lambda: queue.enqueue_embed(document_id=left))
    return DONE


def _claim_embed_batch(document_id: int, task_id: str) -> list[int]:
    """Claim ``document_id`` and other parsed documents, up to INGEST_EMBED_BATCH_CHUNKS
    chunks together; [] if ``document_id`` is not this task's to embed."""
    lease = settings.INGEST_EMBED_LEASE_SECONDS
    if not claim(document_id, free=[S.PARSED], held=S.EMBEDDING, task_id=task_id, lease_seconds=lease, count_attempt=False):
        return []
    drafts_count = Func(F("draft_chunks"), function="jsonb_array_length", output_field=IntegerField())
    with transaction.atomic():
        budget = settings.INGEST_EMBED_BATCH_CHUNKS
        batch = [document_id]
        used = Document.objects.filter(id=document_id, draft_chunks__isnull=False).values_list(drafts_count, flat=True).first() or 0
        candidates = (
            Document.objects.select_for_update(skip_locked=True)
            .filter(Q(status=S.PARSED) | Q(status=S.EMBEDDING, claim_task_id=task_id), draft_chunks__isnull=False)
            .exclude(id=document_id).order_by("id").values_list("id", drafts_count)[:budget]
        )
        for other_id, count in candidates:
            if used >= budget:
                break
            if used + count > budget and used:
                continue
            batch.append(other_id)
            used += count
        Document.objects.filter(id__in=batch[1:]).update(
            status=S.EMBEDDING, claim_task_id=task_id, lease_expires_at=timezone.now() + timedelta(seconds=lease)
        )
    return batch


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
