"""The parse step (queue "parse"): claim, parse in a sandboxed child, store the drafts,
hand over to the embed step. Small text files are parsed many at a time in one child.
Claims, leases and failures: apps.ingestion.claims."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.corpus.models import Document
from apps.ingestion import parsing, queue
from apps.ingestion.claims import (
    DONE,
    TransientIngestError,
    busy_or_done,
    claim,
    document_mark_failed,
    documents_release,
    document_quarantine,
    transient_failure,
)
from apps.ingestion.holders import current_holder
from apps.ingestion.parse_settings import parse_options
from apps.ingestion.personal_data import INDEX, screen_drafts
from apps.ingestion.sandbox import run_limited
from apps.ingestion.sandbox_wire import ChildRaised, SandboxError, capture, unwrap
from apps.ingestion.warming import warm_parent

logger = logging.getLogger(__name__)

S = Document.Status


def _parse_in_child(path: str, name: str, options: dict) -> list[dict]:
    """Runs in the sandbox child: one file's chunk drafts as plain dicts (JSON for the pipe)."""
    return [dataclasses.asdict(d) for d in parsing.parse_and_chunk(Path(path), name, **options)]


def _parse_many_in_child(jobs: list[tuple[str, str]], options: dict) -> list[dict]:
    """Several small files in one child: one fork instead of one per file. Each file's own
    error is returned as its result (apps.ingestion.sandbox_wire.capture); running out of
    memory fails the whole child, and the caller then parses each file alone so only the
    culprit fails."""
    return [capture(_parse_in_child, path, name, options) for path, name in jobs]


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
            transaction.on_commit(lambda: queue.enqueue_parse(document_id=left))


def _claim_more_for_parse(primary: Document, task_id: str) -> list[int]:
    """Claim up to INGEST_PARSE_BATCH_DOCS - 1 other queued small text files, together at
    most INGEST_PARSE_BATCH_TOTAL_BYTES (or take back the ones this task held before a
    redelivery), so one child parses them all. Large batches also feed the embed step fuller
    batches with less padding (measured in docs/benchmarks.md)."""
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
                status=S.PROCESSING, claim_task_id=task_id, claim_holder=current_holder(), attempts=F("attempts") + 1,
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
    if not claim(document_id, free=[S.QUEUED], held=S.PROCESSING, task_id=task_id,
                  lease_seconds=settings.INGEST_PARSE_LEASE_SECONDS, count_attempt=True):
        # A redelivery after the worker died mid-batch, once this file got through: the other
        # files the first delivery claimed would wait for their lease. Give them back now.
        documents_release(task_id=task_id)
        return busy_or_done(document_id, S.PROCESSING)
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
    warm_parent()
    options = parse_options()
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
                transient_failure(doc_id, reason, code=f"limit_{outcome.code}", primary=own)
            elif isinstance(outcome, ChildRaised):
                _parse_raised(doc_id, outcome, primary=own)
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
    """(document id, the drafts or the ChildRaised or SandboxError, seconds) per job: all in
    one child when there are several; if that child dies, each alone."""
    if len(jobs) > 1:
        try:
            result = run_limited(_parse_many_in_child, [(path, name) for _, path, name in jobs], options,
                                 readable=[path for _, path, _ in jobs], **limits)
        except (SandboxError, ChildRaised) as error:
            logger.warning("batch parse of %s documents %s; parsing each alone", len(jobs), error)
        else:
            share = result.seconds / len(jobs)
            for (doc_id, _, _), item in zip(jobs, result.value, strict=True):
                try:
                    yield doc_id, unwrap(item), share
                except (ChildRaised, SandboxError) as error:
                    yield doc_id, error, share
            return
    for doc_id, path, name in jobs:
        try:
            result = run_limited(_parse_in_child, path, name, options, readable=[path], **limits)
        except (ChildRaised, SandboxError) as error:
            yield doc_id, error, 0.0
        else:
            yield doc_id, result.value, result.seconds


def _hand_over(parsed: list[int]) -> None:
    """One embed task for the files this task parsed: it takes all of them (and any other
    parsed file) in one batch, and queues a successor if any are left over."""
    if parsed:
        transaction.on_commit(lambda: queue.enqueue_embed(document_id=parsed[0]))


def _discard_refused_file(document_id: int) -> None:
    """A file the collection's policy refuses is not kept (security review L6): its row stays
    (failed, with the reason and the counts by type), its bytes go; a retry cannot bring it
    back (re-upload it after changing the policy)."""
    document = Document.objects.filter(id=document_id).first()
    if document is None or not document.file:
        return
    name, storage = document.file.name, document.file.storage
    Document.objects.filter(id=document_id).update(file="")
    transaction.on_commit(lambda: storage.delete(name))


def _parse_raised(document_id: int, raised: ChildRaised, *, primary: bool) -> None:
    """The parser raised: the file's own fault (a ParseError, with the admin's message), or
    an unexpected error, which is retried like any transient failure."""
    if raised.type_name == "ParseError":
        document_mark_failed(document_id=document_id, reason=raised.message, code=raised.code or "corrupt")
        return
    logger.error("parsing document %s raised %s: %s\n%s", document_id, raised.type_name, raised.message, raised.traceback)
    transient_failure(document_id, f"Unexpected error while parsing ({raised.type_name}): {raised.message}",
                      code="error", primary=primary)


def _parse_finished(document_id: int, task_id: str, drafts: list[dict], *, seconds: float, primary: bool) -> bool:
    """Store one file's drafts for the embed step (True), or its refusal by the collection's policy."""
    policy = Document.objects.filter(id=document_id).values_list("collection__pii_policy", flat=True).first()
    screened = screen_drafts(drafts, policy or INDEX)
    if screened.refusal:
        if Document.objects.filter(id=document_id, status=S.PROCESSING, claim_task_id=task_id).update(
                pii_summary=screened.summary):
            document_mark_failed(document_id=document_id, reason=screened.refusal, code="personal_data",
                                 extra={"personal_data": screened.summary, "pii_policy": policy, "file_deleted": True})
            _discard_refused_file(document_id)
        return False
    return bool(Document.objects.filter(id=document_id, status=S.PROCESSING, claim_task_id=task_id).update(
        status=S.PARSED, draft_chunks=screened.drafts, parse_seconds=seconds + screened.seconds,
        pii_summary=screened.summary,
        claim_task_id="", lease_expires_at=None, failure_reason="", failure_code="",
    ))
