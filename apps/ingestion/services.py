"""Upload and ingestion: the only writers of documents and chunks.

upload -> Document(queued) + stored file -> Celery task -> document_ingest:
parse (unstructured) -> chunk by title -> embed (sentence-transformers) ->
one transaction: chunks + vectors + tsvector + status=indexed + audit event.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.core.files import File
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.models import Chunk, Collection, Document
from apps.ingestion.embedding import embed_passages
from apps.ingestion.parsing import SUPPORTED_EXTENSIONS, ParseError, detect_file_type, parse_and_chunk

logger = logging.getLogger(__name__)


class UploadRejected(Exception):
    """The file was refused before anything was stored; the message is for the uploader."""


@dataclass(frozen=True)
class UploadResult:
    document: Document
    created: bool  # False: the same bytes were already in this collection


def document_upload(
    *, collection: Collection, uploaded_by, name: str, content: IO[bytes], size: int | None = None
) -> UploadResult:
    """Store a file and queue it for ingestion, or refuse it with a reason (audited)."""
    try:
        return _store_upload(collection=collection, uploaded_by=uploaded_by, name=name, content=content, size=size)
    except UploadRejected as rejection:
        audit_record(
            event_type=EventType.DOCUMENT_REJECTED,
            outcome=Outcome.REJECTED,
            actor=uploaded_by,
            payload={"collection_id": collection.id, "file_name": name, "reason": str(rejection)},
        )
        raise


def _store_upload(*, collection, uploaded_by, name, content, size) -> UploadResult:
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        allowed = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UploadRejected(f"{name}: files of type “{suffix or 'none'}” are not supported (supported: {allowed}).")
    limit = settings.UPLOAD_MAX_BYTES
    if size is not None and size > limit:
        raise UploadRejected(f"{name}: {size:,} bytes is over the upload limit of {limit:,} bytes.")
    if size == 0:
        raise UploadRejected(f"{name}: the file is empty.")

    staging = Path(settings.MEDIA_ROOT) / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=staging, delete=True) as tmp:
        digest, written = hashlib.sha256(), 0
        while block := content.read(1024 * 1024):
            written += len(block)
            if written > limit:  # the declared size may lie: stop reading at the limit
                raise UploadRejected(f"{name}: the file is over the upload limit of {limit:,} bytes.")
            digest.update(block)
            tmp.write(block)
        tmp.flush()
        if written == 0:
            raise UploadRejected(f"{name}: the file is empty.")
        try:
            file_type = detect_file_type(Path(tmp.name), name)
        except ParseError as error:
            raise UploadRejected(f"{name}: {error}") from None
        sha256 = digest.hexdigest()

        existing = Document.objects.filter(collection=collection, sha256=sha256).first()
        if existing:
            return UploadResult(existing, created=False)

        document = Document(
            collection=collection,
            title=Path(name).name[:255],
            sha256=sha256,
            size_bytes=written,
            file_type=file_type,
            uploaded_by=uploaded_by,
        )
        tmp.seek(0)
        document.file.save(document.title, File(tmp), save=False)
    try:
        with transaction.atomic():
            document.save()
            audit_record(
                event_type=EventType.DOCUMENT_UPLOADED,
                outcome=Outcome.SUCCESS,
                actor=uploaded_by,
                payload={
                    "collection_id": collection.id,
                    "document_id": document.id,
                    "file_name": document.title,
                    "sha256": sha256,
                    "size_bytes": written,
                    "file_type": file_type,
                },
            )
            transaction.on_commit(lambda: document_enqueue(document_id=document.id))
    except Exception:
        document.file.delete(save=False)  # nothing half-stored
        raise
    return UploadResult(document, created=True)


def document_enqueue(*, document_id: int) -> bool:
    """Hand the document to a worker. A dead broker leaves it queued (retried at start-up)."""
    from apps.ingestion.tasks import ingest_document

    try:
        ingest_document.apply_async(args=[document_id], retry=True, retry_policy={"max_retries": 2, "interval_start": 0.5, "interval_step": 1})
    except Exception as error:  # kombu raises OperationalError subclasses, not one base
        logger.error("Could not queue document %s for ingestion: %s", document_id, error)
        Document.objects.filter(id=document_id, status=Document.Status.QUEUED).update(
            failure_reason=f"Waiting: the ingestion queue is unreachable ({error}). It will be retried."
        )
        return False
    return True


def documents_requeue_unfinished() -> int:
    """Queue again every document not yet indexed or failed (after a restart or outage)."""
    ids = list(
        Document.objects.filter(status__in=[Document.Status.QUEUED, Document.Status.PROCESSING]).values_list("id", flat=True)
    )
    for document_id in ids:
        document_enqueue(document_id=document_id)
    return len(ids)


def document_ingest(*, document_id: int) -> Document | None:
    """Parse, chunk, embed and store one document. Idempotent: a redelivered task redoes
    the work and replaces the chunks; a finished or deleted document is left alone."""
    claimed = Document.objects.filter(
        id=document_id, status__in=[Document.Status.QUEUED, Document.Status.PROCESSING]
    ).update(status=Document.Status.PROCESSING, attempts=F("attempts") + 1, failure_reason="")
    if not claimed:
        return None
    document = Document.objects.get(id=document_id)
    try:
        drafts = parse_and_chunk(
            Path(document.file.path),
            document.title,
            max_characters=settings.CHUNK_MAX_CHARACTERS,
            new_after_n_chars=settings.CHUNK_NEW_AFTER_CHARACTERS,
            overlap=settings.CHUNK_OVERLAP_CHARACTERS,
        )
    except ParseError as error:
        return document_mark_failed(document_id=document_id, reason=str(error))
    except FileNotFoundError:
        return document_mark_failed(document_id=document_id, reason="The stored file is missing; upload it again.")

    vectors = embed_passages([draft.text for draft in drafts])

    with transaction.atomic():
        document = Document.objects.select_for_update().filter(id=document_id).first()
        if document is None or document.status != Document.Status.PROCESSING:
            return document  # deleted or finished by another delivery meanwhile
        Chunk.objects.filter(document=document).delete()
        Chunk.objects.bulk_create(
            Chunk(
                document=document,
                collection_id=document.collection_id,
                ordinal=draft.ordinal,
                text=draft.text,
                page_number=draft.page_number,
                section_title=draft.section_title[:500],
                embedding=vector,
            )
            for draft, vector in zip(drafts, vectors, strict=True)
        )
        Chunk.objects.filter(document=document).update(
            search_vector=SearchVector("section_title", weight="A", config="english")
            + SearchVector("text", weight="B", config="english")
        )
        document.status = Document.Status.INDEXED
        document.chunk_count = len(drafts)
        document.page_count = Chunk.objects.filter(document=document).aggregate(p=Max("page_number"))["p"]
        document.indexed_at = timezone.now()
        document.failure_reason = ""
        document.save()
        audit_record(
            event_type=EventType.DOCUMENT_INDEXED,
            outcome=Outcome.SUCCESS,
            actor=document.uploaded_by,
            payload={
                "collection_id": document.collection_id,
                "document_id": document.id,
                "sha256": document.sha256,
                "chunks": document.chunk_count,
                "pages": document.page_count,
                "attempt": document.attempts,
            },
        )
    return document


def document_mark_failed(*, document_id: int, reason: str) -> Document | None:
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(id=document_id).first()
        if document is None:
            return None
        Chunk.objects.filter(document=document).delete()
        document.status = Document.Status.FAILED
        document.failure_reason = reason
        document.chunk_count = 0
        document.save()
        audit_record(
            event_type=EventType.DOCUMENT_FAILED,
            outcome=Outcome.FAILED,
            actor=document.uploaded_by,
            payload={
                "collection_id": document.collection_id,
                "document_id": document.id,
                "sha256": document.sha256,
                "reason": reason,
                "attempt": document.attempts,
            },
        )
    return document
