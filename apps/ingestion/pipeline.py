"""The two ingestion steps, each claimed atomically and safe to run twice.

    queued --parse (queue "parse", sandboxed child)--> parsed --embed (queue "embed")--> indexed
       \\__ ParseError: failed (the file's fault, not retried)
       \\__ limit hit / crash / worker lost: retried with backoff; after INGEST_MAX_ATTEMPTS
           parse attempts: failed + quarantined, with the reason

A claim is a conditional UPDATE that sets ``claim_task_id`` and a lease. The same Celery
task id (a redelivery after a worker died, or a retry) takes its own claim back at once;
another task waits for the lease to expire. The embed step claims up to
``INGEST_EMBED_BATCH_CHUNKS`` chunks from several parsed documents and encodes them in one
call (the model is faster on full batches); each document is then stored in its own
transaction that replaces its chunks (and a previous version's) in one go.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import traceback
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import transaction
from django.db.models import F, Func, IntegerField, Q
from django.utils import timezone

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record, audit_record_many
from apps.corpus.models import Chunk, Document
from apps.ingestion import parsing
from apps.ingestion.sandbox import SandboxError, run_limited
from apps.ingestion.turns import model_turn

logger = logging.getLogger(__name__)

S = Document.Status
DONE = "done"  # nothing (more) to do: finished, failed or deleted
BUSY = "busy"  # another live task holds the claim: try again later


class TransientIngestError(Exception):
    """Worth another attempt (limit hit under load, crash, database hiccup)."""


# -- parse ------------------------------------------------------------------------------------


def _claim(document_id: int, *, free: list[str], held: str, task_id: str, lease_seconds: float, count_attempt: bool) -> bool:
    now = timezone.now()
    mine_or_expired = Q(status=held) & (
        Q(claim_task_id=task_id) | Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    )
    updates = {"status": held, "claim_task_id": task_id, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    if count_attempt:
        updates["attempts"] = F("attempts") + 1
    return bool(Document.objects.filter(Q(id=document_id) & (Q(status__in=free) | mine_or_expired)).update(**updates))


def _busy_or_done(document_id: int, held: str) -> str:
    return BUSY if Document.objects.filter(id=document_id, status=held).exists() else DONE


_warm = False


def _warm_parent() -> None:
    """Import the parsers once in the worker so every forked child starts warm."""
    global _warm
    if not _warm:
        parsing.warm_up()
        _warm = True


def warm_pool_process(*, parsers: bool = True, model: bool = True) -> None:
    """When a worker's pool process starts (the worker_process_init signal): load the parsers
    and the embedding model now, so the first documents after a start do not wait for them
    (4-7 s on 2 cores) and a process that never encoded does not stall the pipeline the first
    time it takes a batch. A failure is only logged: the task that needs the model reports it."""
    started = time.monotonic()
    loaded = []
    try:
        if parsers:
            _warm_parent()
            loaded.append("parsers")
        if model:
            from apps.ingestion.embedding import _model

            _model()
            loaded.append("embedding model")
    except Exception:
        logger.exception("pool process %s: warming the parsers and the embedding model failed", os.getpid())
        return
    if loaded:
        logger.info("pool process %s warm: %s loaded in %.1f s", os.getpid(), " and ".join(loaded), time.monotonic() - started)


def _parse_in_child(path: str, name: str, options: dict) -> list[dict]:
    return [dataclasses.asdict(d) for d in parsing.parse_and_chunk(Path(path), name, **options)]


def _parse_many_in_child(jobs: list[tuple[str, str]], options: dict) -> list[dict]:
    """Several small files in one child: one fork instead of one per file (a fork of a worker
    that holds the model costs ~0.1 s, parsing a short text file ~0.02 s). Each file's own
    error is returned as its result; running out of memory fails the whole child, and the
    caller then parses each file alone so only the culprit fails."""
    results = []
    for path, name in jobs:
        try:
            results.append({"ok": True, "value": _parse_in_child(path, name, options)})
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported per file, like the sandbox does
            results.append({"ok": False, "type": type(exc).__name__, "message": str(exc),
                            "code": getattr(exc, "code", None), "traceback": traceback.format_exc(limit=20)})
    return results


# Formats cheap and safe enough to parse several at once in one child (small text files).
BATCHABLE_FILE_TYPES = {".txt", ".md", ".markdown", ".csv", ".html", ".htm"}


def is_batchable(file_type: str, size_bytes: int) -> bool:
    return file_type in BATCHABLE_FILE_TYPES and size_bytes <= settings.INGEST_PARSE_BATCH_MAX_BYTES


def _batchable(document: Document) -> bool:
    return is_batchable(document.file_type, document.size_bytes)


def _batchable_q() -> Q:
    """``is_batchable`` as a query filter."""
    return Q(file_type__in=BATCHABLE_FILE_TYPES, size_bytes__lte=settings.INGEST_PARSE_BATCH_MAX_BYTES)


def _send_successor(primary: Document) -> None:
    """Small files still queued after this batch (its claim was full, or they belong to a
    bulk upload's group whose task found its own file taken): one more task takes them."""
    if _batchable(primary):
        left = Document.objects.filter(_batchable_q(), status=S.QUEUED).order_by("id").values_list("id", flat=True).first()
        if left is not None:
            transaction.on_commit(lambda: enqueue_parse(document_id=left))


def _claim_more_for_parse(primary: Document, task_id: str) -> list[int]:
    """Claim up to INGEST_PARSE_BATCH_DOCS - 1 other queued small text files, together at
    most INGEST_PARSE_BATCH_TOTAL_BYTES (or take back the ones this task held before a
    redelivery), so one child parses them all. Large batches also feed the embed step: the
    model encodes ~100 short files' chunks in one call 1.3x faster than 16 files' (less
    padding, fuller batches; docs/benchmarks.md)."""
    limit = settings.INGEST_PARSE_BATCH_DOCS - 1
    if limit <= 0 or not _batchable(primary):
        return []
    now = timezone.now()
    budget = settings.INGEST_PARSE_BATCH_TOTAL_BYTES - primary.size_bytes
    with transaction.atomic():
        ids = []
        for doc_id, size in (
            Document.objects.select_for_update(skip_locked=True)
            .filter(Q(status=S.QUEUED) | Q(status=S.PROCESSING, claim_task_id=task_id))
            .filter(_batchable_q())
            .exclude(id=primary.id).order_by("id").values_list("id", "size_bytes")[:limit]
        ):
            if size > budget:
                break
            budget -= size
            ids.append(doc_id)
        if ids:
            Document.objects.filter(id__in=ids).update(
                status=S.PROCESSING, claim_task_id=task_id, attempts=F("attempts") + 1,
                lease_expires_at=now + timedelta(seconds=settings.INGEST_PARSE_LEASE_SECONDS),
            )
    return ids


def document_parse(*, document_id: int, task_id: str) -> str:
    """Claim, parse in a sandboxed child, store the drafts, hand over to the embed step.

    Small text files are parsed in batches: this task also claims other queued ones and one
    child parses them all. If that child dies (memory, time, crash), each file is parsed
    alone in its own child, so a hostile file fails by itself and nothing else is affected.
    Only ``document_id``'s failure is raised for the task to retry; another claimed file
    that hits a transient failure goes back to the queue with its own task."""
    if not _claim(document_id, free=[S.QUEUED], held=S.PROCESSING, task_id=task_id,
                  lease_seconds=settings.INGEST_PARSE_LEASE_SECONDS, count_attempt=True):
        return _busy_or_done(document_id, S.PROCESSING)
    primary = Document.objects.get(id=document_id)
    others = _claim_more_for_parse(primary, task_id)
    jobs: list[tuple[int, str, str]] = []
    for document in [primary, *Document.objects.filter(id__in=others).order_by("id")]:
        if document.attempts > settings.INGEST_MAX_ATTEMPTS:
            document_quarantine(
                document_id=document.id,
                reason=f"Processing was interrupted {document.attempts - 1} times (the worker stopped "
                "while handling this file). It was set aside so it cannot stop the workers again; "
                "check the file, then retry or delete it.",
            )
            continue
        try:
            path = document.file.path
            if not Path(path).exists():
                raise FileNotFoundError(path)
        except (FileNotFoundError, ValueError):
            document_mark_failed(document_id=document.id, reason="The stored file is missing; upload it again.", code="missing")
            continue
        jobs.append((document.id, path, document.title))
    if not jobs:
        _send_successor(primary)
        return DONE
    _warm_parent()
    options = {
        "max_characters": settings.CHUNK_MAX_CHARACTERS,
        "new_after_n_chars": settings.CHUNK_NEW_AFTER_CHARACTERS,
        "overlap": settings.CHUNK_OVERLAP_CHARACTERS,
    }
    limits = {
        "memory_bytes": settings.INGEST_PARSE_MEMORY_MB * 1024 * 1024,
        "cpu_seconds": settings.INGEST_PARSE_CPU_SECONDS,
        "wall_seconds": settings.INGEST_PARSE_WALL_SECONDS,
        "nice": settings.INGEST_PARSE_NICE,
    }
    retry: TransientIngestError | None = None
    parsed = []
    for doc_id, outcome, seconds in _parse_outcomes(jobs, options, limits):
        own = doc_id == document_id
        try:
            if isinstance(outcome, SandboxError):
                reason = (f"Parsing this file {outcome} and was stopped (limits: "
                          f"{settings.INGEST_PARSE_MEMORY_MB} MiB, {settings.INGEST_PARSE_CPU_SECONDS} s CPU); "
                          "the file may be malformed or hostile.")
                _transient_failure(doc_id, reason, code=f"limit_{outcome.code}", primary=own)
            elif _parse_finished(doc_id, task_id, outcome, seconds=seconds, primary=own):
                parsed.append(doc_id)
        except TransientIngestError as error:  # the task's own file: retried once the others are done
            retry = error
    _hand_over(parsed)
    _send_successor(primary)
    if retry is not None:
        raise retry
    return DONE


def _parse_outcomes(jobs: list[tuple[int, str, str]], options: dict, limits: dict):
    """(document id, the child's payload or the SandboxError, seconds) per job: all in one
    child when there are several; if that child dies, each alone."""
    if len(jobs) > 1:
        try:
            result = run_limited(_parse_many_in_child, [(path, name) for _, path, name in jobs], options, **limits)
        except SandboxError as error:
            logger.warning("batch parse of %s documents %s; parsing each alone", len(jobs), error)
        else:
            if result.value["ok"]:
                share = result.seconds / len(jobs)
                for (doc_id, _, _), payload in zip(jobs, result.value["value"], strict=True):
                    yield doc_id, payload, share
                return
    for doc_id, path, name in jobs:
        try:
            result = run_limited(_parse_in_child, path, name, options, **limits)
        except SandboxError as error:
            yield doc_id, error, 0.0
        else:
            yield doc_id, result.value, result.seconds


def _hand_over(parsed: list[int]) -> None:
    """One embed task for the files this task parsed: it takes all of them (and any other
    parsed file) in one batch, and queues a successor if any are left over."""
    if parsed:
        transaction.on_commit(lambda: enqueue_embed(document_id=parsed[0]))


def _parse_finished(document_id: int, task_id: str, payload: dict, *, seconds: float, primary: bool) -> bool:
    """Store one file's parse outcome: drafts for the embed step (True), or its failure."""
    if not payload["ok"]:
        if payload.get("type") == "ParseError":
            document_mark_failed(document_id=document_id, reason=payload["message"], code=payload.get("code") or "corrupt")
            return False
        logger.error("parsing document %s raised %s: %s\n%s", document_id, payload.get("type"), payload.get("message"), payload.get("traceback"))
        _transient_failure(document_id, f"Unexpected error while parsing ({payload.get('type')}): {payload.get('message')}",
                           code="error", primary=primary)
        return False
    return bool(Document.objects.filter(id=document_id, status=S.PROCESSING, claim_task_id=task_id).update(
        status=S.PARSED, draft_chunks=payload["value"], parse_seconds=seconds,
        claim_task_id="", lease_expires_at=None, failure_reason="", failure_code="",
    ))


def _transient_failure(document_id: int, reason: str, *, code: str, primary: bool = True) -> str:
    attempts = Document.objects.filter(id=document_id).values_list("attempts", flat=True).first()
    if attempts is None:
        return DONE
    if attempts >= settings.INGEST_MAX_ATTEMPTS:
        document_quarantine(document_id=document_id, reason=f"{reason} Failed {attempts} times; set aside.", code=code)
        return DONE
    message = f"Attempt {attempts} failed, will retry: {reason}"
    if not primary:  # claimed along with another file: back to the queue with its own task
        with transaction.atomic():
            if Document.objects.filter(id=document_id, status=S.PROCESSING).update(
                status=S.QUEUED, claim_task_id="", lease_expires_at=None, failure_reason=message, failure_code=code
            ):
                transaction.on_commit(lambda: enqueue_parse(document_id=document_id))
        return DONE
    Document.objects.filter(id=document_id, status=S.PROCESSING).update(failure_reason=message, failure_code=code)
    raise TransientIngestError(reason)


# -- embed ------------------------------------------------------------------------------------


def documents_embed(*, document_id: int, task_id: str) -> str:
    """Embed this document's drafts together with other parsed documents' (one batch).

    The batch is claimed once this process has its turn on the model (apps.ingestion.turns),
    so it takes whatever was parsed while another process encoded, and stored after the turn
    is handed on, so the next batch encodes while this one is written."""
    from apps.ingestion.embedding import embed_passages

    with model_turn() as waited:
        batch = _claim_embed_batch(document_id, task_id)
        if not batch:
            return _busy_or_done(document_id, S.EMBEDDING)
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
        transaction.on_commit(lambda: enqueue_embed(document_id=left))
    return DONE


def _claim_embed_batch(document_id: int, task_id: str) -> list[int]:
    """Claim ``document_id`` and other parsed documents, up to INGEST_EMBED_BATCH_CHUNKS
    chunks together; [] if ``document_id`` is not this task's to embed."""
    lease = settings.INGEST_EMBED_LEASE_SECONDS
    if not _claim(document_id, free=[S.PARSED], held=S.EMBEDDING, task_id=task_id, lease_seconds=lease, count_attempt=False):
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
    are per batch, not per document (chunks, full-text vectors, statuses, audit events)."""
    with transaction.atomic():
        locked = {d.id: d for d in Document.objects.select_for_update(of=("self",)).select_related("uploaded_by")
                  .filter(id__in=[b[0] for b in batch]).order_by("id")}
        mine = [b for b in batch if (d := locked.get(b[0])) is not None
                and d.status == S.EMBEDDING and d.claim_task_id == task_id]  # others: deleted or taken over
        if not mine:
            return
        ids = [b[0] for b in mine]
        # A later version indexed first: this one must not come back to search.
        overtaken = set(Document.objects.filter(replaces_id__in=ids, status=S.INDEXED).values_list("replaces_id", flat=True))
        Chunk.objects.filter(document_id__in=ids).delete()
        chunks, indexed, events = [], [], []
        now = timezone.now()
        for document_id, drafts, vectors, embed_seconds in mine:
            document = locked[document_id]
            if document_id in overtaken:
                _supersede(document)
                continue
            chunks += [
                Chunk(
                    document=document, collection_id=document.collection_id, ordinal=d["ordinal"], text=d["text"],
                    page_number=d["page_number"], section_title=d["section_title"][:500],
                    metadata=d.get("metadata") or {}, embedding=vector,
                )
                for d, vector in zip(drafts, vectors, strict=True)
            ]
            replaced = None
            if document.replaces_id:
                replaced = Document.objects.select_for_update().filter(id=document.replaces_id).first()
                if replaced is not None and replaced.status != S.SUPERSEDED:
                    Chunk.objects.filter(document=replaced).delete()
                    _supersede(replaced)
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
            events.append({
                "event_type": EventType.DOCUMENT_INDEXED, "outcome": Outcome.SUCCESS, "actor": document.uploaded_by,
                "payload": {
                    "collection_id": document.collection_id, "document_id": document.id, "sha256": document.sha256,
                    "chunks": document.chunk_count, "pages": document.page_count, "attempt": document.attempts,
                    "version": document.version, "replaced_document_id": replaced.id if replaced else None,
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


def _supersede(document: Document) -> None:
    document.status = S.SUPERSEDED
    document.chunk_count = 0
    document.draft_chunks = None
    document.claim_task_id = ""
    document.lease_expires_at = None
    document.save()


# -- ends -------------------------------------------------------------------------------------


def document_mark_failed(*, document_id: int, reason: str, code: str = "error", quarantine: bool = False) -> Document | None:
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
            "reason": reason, "code": code, "attempt": document.attempts,
        }
        audit_record(event_type=EventType.DOCUMENT_FAILED, outcome=Outcome.FAILED, actor=document.uploaded_by, payload=payload)
        if quarantine:
            audit_record(event_type=EventType.DOCUMENT_QUARANTINED, outcome=Outcome.FAILED, actor=document.uploaded_by, payload=payload)
    return document


def document_quarantine(*, document_id: int, reason: str, code: str = "quarantined") -> Document | None:
    return document_mark_failed(document_id=document_id, reason=reason, code=code, quarantine=True)


def enqueue_parse(*, document_id: int) -> bool:
    from apps.ingestion.tasks import ingest_document

    return _send(ingest_document, document_id)


def enqueue_embed(*, document_id: int) -> bool:
    from apps.ingestion.tasks import embed_documents

    return _send(embed_documents, document_id)


def _send(task, document_id: int) -> bool:
    try:
        task.apply_async(args=[document_id], retry=True, retry_policy={"max_retries": 2, "interval_start": 0.5, "interval_step": 1})
    except Exception as error:  # kombu raises OperationalError subclasses, not one base
        logger.error("Could not queue document %s (%s): %s", document_id, task.name, error)
        mark_waiting([document_id], f" ({error})")
        return False
    return True


def mark_waiting(document_ids: list[int], detail: str = "", statuses=(S.QUEUED, S.PARSED)) -> None:
    """Documents whose task could not be sent: they stay queued, with a note saying why."""
    Document.objects.filter(id__in=document_ids, status__in=statuses).update(
        failure_reason=f"Waiting: the ingestion queue is unreachable{detail}. It will be retried."
    )
