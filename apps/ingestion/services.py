"""Upload and ingestion: the only writers of documents and chunks.

upload -> Document(queued) + stored file -> parse task (sandboxed child, queue "parse") ->
embed task (batched across documents, queue "embed") -> one transaction: chunks + vectors +
tsvector + status=indexed (+ the previous version superseded) + audit event.
The steps: apps.ingestion.parse_step and embed_step; claims, retries and quarantine:
apps.ingestion.claims; sending tasks: apps.ingestion.queue.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.models import Collection, Document
from apps.corpus.selectors import may_add_version
from apps.ingestion.parsing import ARCHIVE_EXTENSIONS, LEGACY_OFFICE_EXTENSIONS, SUPPORTED_EXTENSIONS, ParseError
from apps.ingestion import queue
from apps.ingestion.embed_step import documents_embed
from apps.ingestion.parse_step import document_parse, is_batchable
from apps.ingestion.sniffing import sniff_session, upload_file_type

logger = logging.getLogger(__name__)


class UploadRejected(Exception):
    """The file was refused before anything was stored; the message is for the uploader."""


@dataclass(frozen=True)
class UploadResult:
    document: Document
    created: bool  # False: the same bytes were already in this collection
    name: str = ""  # the file name as given (archive members: their path in the archive)


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
    if suffix in LEGACY_OFFICE_EXTENSIONS:
        raise UploadRejected(
            f"{name}: legacy Office files ({suffix}) need LibreOffice, which this platform does not "
            "install. Save the file as .docx, .xlsx, .pptx or PDF and upload that."
        )
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
        try:  # by content, in the sandbox (apps.ingestion.sniffing)
            file_type = upload_file_type(Path(tmp.name), name)
        except ParseError as error:
            raise UploadRejected(f"{name}: {error}") from None
        sha256 = digest.hexdigest()

        if file_type in ARCHIVE_EXTENSIONS:
            raise UploadRejected(f"{name}: archives inside archives are not unpacked; upload the inner archive itself.")

        existing = Document.objects.filter(collection=collection, sha256=sha256).first()
        if existing:
            return _duplicate(existing, uploaded_by, name)

        title = document_title(name)
        document = Document(
            collection=collection,
            title=title,
            sha256=sha256,
            size_bytes=written,
            file_type=file_type,
            uploaded_by=uploaded_by,
        )
        tmp.seek(0)
        document.file.save(document.title, File(tmp), save=False)
    for attempt in range(3):
        try:
            with transaction.atomic():
                _save_document(document, collection=collection, uploaded_by=uploaded_by, title=title)
            break
        except IntegrityError as error:
            if _constraint(error) == "unique_document_version" and attempt < 2:
                document.pk = None  # another upload of this title took the version: take the next
                continue
            _discard_file(document)
            existing = Document.objects.filter(collection=collection, sha256=sha256).first()
            if existing is None:  # not the same bytes stored concurrently by another upload
                raise
            return _duplicate(existing, uploaded_by, name)
        except Exception:
            _discard_file(document)  # nothing half-stored
            raise
    return UploadResult(document, created=True, name=name)


def _current_version(collection, title: str) -> Document | None:
    return (
        Document.objects.select_for_update()
        .filter(collection=collection, title=title)
        .exclude(status=Document.Status.SUPERSEDED)
        .order_by("-version").first()
    )


def _save_document(document: Document, *, collection, uploaded_by, title: str) -> None:
    """Insert the document (a known title with new bytes is its next version), audit it, and
    queue it once committed. The constraints on (collection, sha256) and (collection, title,
    version) make concurrent uploads safe; the caller retries a lost version race."""
    # A known title with new bytes is the next version of that document.
    previous = _current_version(collection, title)
    refused_version_of = None
    if previous is not None and not may_add_version(user=uploaded_by, document=previous):
        # Only a manager or the original uploader replaces a document (replacing drops its
        # passages from search): anyone else's file is kept beside it, audited.
        refused_version_of, document.title = previous, _separate_title(title, uploaded_by)
        previous = _current_version(collection, document.title)
        if previous is not None and not may_add_version(user=uploaded_by, document=previous):
            raise UploadRejected(f"{document.title}: a document of this name exists; ask a manager of the collection.")
    if previous is not None:
        document.version, document.replaces = previous.version + 1, previous
    document.save()
    payload = {
        "collection_id": collection.id,
        "document_id": document.id,
        "file_name": document.title,
        "sha256": document.sha256,
        "size_bytes": document.size_bytes,
        "file_type": document.file_type,
    }
    if refused_version_of is not None:
        payload["version_refused"] = {
            "document_id": refused_version_of.id, "title": refused_version_of.title,
            "reason": "a new version needs the manage grant or the original uploader"}
    audit_record(event_type=EventType.DOCUMENT_UPLOADED, outcome=Outcome.SUCCESS, actor=uploaded_by, payload=payload)
    if previous is not None:
        audit_record(
            event_type=EventType.DOCUMENT_VERSION_ADDED, outcome=Outcome.SUCCESS, actor=uploaded_by,
            payload={**payload, "version": document.version, "previous_document_id": previous.id},
        )
    batchable = is_batchable(document.file_type, document.size_bytes)
    transaction.on_commit(lambda: document_enqueue(document_id=document.id, batchable=batchable))


def _constraint(error: IntegrityError) -> str:
    return getattr(getattr(error.__cause__, "diag", None), "constraint_name", "") or ""


def _discard_file(document: Document) -> None:
    """The stored copy of an upload that did not become a document (its name is its own:
    the storage picks a free name when the same bytes were stored at the same moment)."""
    if document.file:
        document.file.delete(save=False)


def document_title(name: str) -> str:
    """A document's title: the name as given, with its folders (a folder's or an archive's
    ``2023/report.pdf`` and ``2024/report.pdf`` are two documents, not two versions of one),
    without any ``..``, ``.`` or leading ``/``; the end is kept when it is too long."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", ".", "..")]
    return "/".join(parts)[-255:] or "unnamed"


def _separate_title(title: str, uploaded_by) -> str:
    """``policy.pdf`` uploaded by bob beside someone else's ``policy.pdf``: ``policy (bob).pdf``."""
    who = uploaded_by.get_username() if uploaded_by is not None else "operator"
    folder, _, base = title.rpartition("/")
    stem, dot, suffix = base.rpartition(".")
    if not stem:
        stem, dot, suffix = base, "", ""
    renamed = f"{stem} ({who}){dot}{suffix}"
    return (f"{folder}/{renamed}" if folder else renamed)[-255:]


def _duplicate(existing: Document, uploaded_by, name: str) -> UploadResult:
    audit_record(
        event_type=EventType.DOCUMENT_DUPLICATE, outcome=Outcome.SUCCESS, actor=uploaded_by,
        payload={"collection_id": existing.collection_id, "document_id": existing.id,
                 "file_name": name, "sha256": existing.sha256},
    )
    return UploadResult(existing, created=False, name=name)


_bulk = threading.local()


@contextmanager
def bulk_enqueue():
    """Uploads made inside this block (a folder, a zip, a multi-file form) hand their small
    text files to the workers in groups: one parse task per ``INGEST_PARSE_BATCH_DOCS``
    files, sent as soon as a group is full (the first group after INGEST_PARSE_FIRST_GROUP_DOCS
    files, so the workers start parsing and encoding at once), instead of one task per file,
    which a worker would receive only to drop once another task's batch had parsed its file
    (its cost: docs/benchmarks.md). Other files are queued one by one as usual.
    Nothing can be left behind: the group's task claims queued small files by id, and a
    parse task that leaves any queued sends a successor (apps.ingestion.parse_step)."""
    if getattr(_bulk, "pending", None) is not None:  # nested: the outer block sends
        yield
        return
    _bulk.pending = []
    _bulk.groups_sent = 0
    try:
        with sniff_session():  # one sandboxed child decides every file's type
            yield
    finally:
        pending, _bulk.pending = _bulk.pending, None
        _send_group(pending)


def _send_group(document_ids: list[int]) -> None:
    if document_ids and not queue.enqueue_parse(document_id=document_ids[0]):
        queue.mark_waiting(document_ids[1:], statuses=(Document.Status.QUEUED,))


def document_enqueue(*, document_id: int, batchable: bool = False) -> bool:
    """Hand the document to a worker. A dead broker leaves it queued with a note; the
    housekeeping task (celery beat) sends it again."""
    pending = getattr(_bulk, "pending", None)
    if pending is None or not batchable:
        return queue.enqueue_parse(document_id=document_id)
    pending.append(document_id)
    group = settings.INGEST_PARSE_BATCH_DOCS
    if not _bulk.groups_sent:
        group = min(group, settings.INGEST_PARSE_FIRST_GROUP_DOCS)
    if len(pending) >= group:
        _send_group(pending[:])
        pending.clear()
        _bulk.groups_sent += 1
    return True


def documents_requeue_unfinished() -> int:
    """Queue again every document not yet indexed or failed (after a restart or outage)."""
    rows = list(Document.objects.filter(status__in=Document.UNFINISHED).values_list("id", "status"))
    for document_id, status in rows:
        if status in (Document.Status.PARSED, Document.Status.EMBEDDING):
            queue.enqueue_embed(document_id=document_id)
        else:
            queue.enqueue_parse(document_id=document_id)
    return len(rows)


def document_ingest(*, document_id: int) -> Document | None:
    """Both steps in this process (CLI, tests): parse in the sandbox, then embed.
    Returns None when there was nothing to do (already finished, or deleted)."""
    task_id = f"inline-{uuid.uuid4()}"
    if not Document.objects.filter(id=document_id, status__in=Document.UNFINISHED).exists():
        return None
    if Document.objects.filter(id=document_id, status=Document.Status.QUEUED).exists() or \
            Document.objects.filter(id=document_id, status=Document.Status.PROCESSING).exists():
        Document.objects.filter(id=document_id, status=Document.Status.PROCESSING).update(lease_expires_at=None)
        document_parse(document_id=document_id, task_id=task_id)
    Document.objects.filter(id=document_id, status=Document.Status.EMBEDDING).update(lease_expires_at=None)
    if Document.objects.filter(id=document_id, status__in=[Document.Status.PARSED, Document.Status.EMBEDDING]).exists():
        documents_embed(document_id=document_id, task_id=task_id)
    return Document.objects.filter(id=document_id).first()


def document_retry(*, document_id: int, actor) -> bool:
    """A failed (or quarantined) document goes back to the queue with a fresh attempt count."""
    with transaction.atomic():
        # A refused file's bytes are gone (apps.ingestion.parse_step): nothing to parse again.
        updated = Document.objects.filter(id=document_id, status=Document.Status.FAILED).exclude(file="").update(
            status=Document.Status.QUEUED, attempts=0, failure_reason="", failure_code="", quarantined_at=None,
            claim_task_id="", lease_expires_at=None,
        )
        if updated:
            document = Document.objects.get(id=document_id)
            audit_record(
                event_type=EventType.DOCUMENT_UPLOADED, outcome=Outcome.SUCCESS, actor=actor,
                payload={"collection_id": document.collection_id, "document_id": document.id,
                         "file_name": document.title, "sha256": document.sha256, "retry": True},
            )
            transaction.on_commit(lambda: document_enqueue(document_id=document_id))
    return bool(updated)
